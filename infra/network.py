"""The VPC every other component lives in: public and private subnets per AZ, NAT, S3 endpoint."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam_policies import policy_document


@dataclass(frozen=True)
class NetworkArgs:
    cidr: str
    """IPv4 CIDR of the VPC (a /20 or larger)."""
    availability_zone_count: int
    """How many AZs to spread over; the first N AZs of the region that are available."""
    nat_gateway_per_az: bool
    """One NAT gateway per AZ (survives an AZ outage) instead of a single shared one (cheaper)."""
    cluster_name: str
    """EKS cluster name, for the subnet tags the AWS Load Balancer Controller discovers subnets by."""
    region: str
    """AWS region, to name the S3 gateway endpoint's service."""
    flow_log_retention_days: int
    """How long VPC flow logs are kept in CloudWatch."""


def subnet_cidrs(vpc_cidr: str, zone_count: int) -> tuple[list[str], list[str]]:
    """Split the VPC into /4-th sized private subnets and small public ones, one of each per AZ.

    Private subnets hold the nodes and pods (the VPC CNI gives every pod a VPC address), so they get
    most of the space; public subnets hold only NAT gateways and load balancers.
    """
    network = ipaddress.IPv4Network(vpc_cidr)
    halves = list(network.subnets(prefixlen_diff=1))
    private = [str(subnet) for subnet in halves[0].subnets(prefixlen_diff=3)][:zone_count]
    public = [str(subnet) for subnet in halves[1].subnets(prefixlen_diff=4)][:zone_count]
    return private, public


class Network(pulumi.ComponentResource):
    """VPC with public/private subnets in each AZ, NAT egress, an S3 gateway endpoint and flow logs."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    private_route_table_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:network:Network", name, None, opts)
        zones = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(parent=self))
        zone_names = [zones.names[index] for index in range(args.availability_zone_count)]
        private_cidrs, public_cidrs = subnet_cidrs(args.cidr, args.availability_zone_count)

        vpc = self._create_vpc(name, args)
        internet_gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, opts=pulumi.ResourceOptions(parent=self)
        )
        public_subnets = self._create_public_subnets(
            name, args, vpc, internet_gateway, zip(zone_names, public_cidrs, strict=True)
        )
        nat_gateways = self._create_nat_gateways(name, args, public_subnets, internet_gateway)
        private_subnets, private_route_tables = self._create_private_subnets(
            name, args, vpc, nat_gateways, zip(zone_names, private_cidrs, strict=True)
        )
        self._create_s3_endpoint(name, args, vpc, private_route_tables)
        self._flow_logs(name, vpc, args.flow_log_retention_days)

        self.vpc_id = vpc.id
        self.private_subnet_ids = [subnet.id for subnet in private_subnets]
        self.public_subnet_ids = [subnet.id for subnet in public_subnets]
        self.private_route_table_ids = [table.id for table in private_route_tables]
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "publicSubnetIds": self.public_subnet_ids,
            }
        )

    def _create_vpc(self, name: str, args: NetworkArgs) -> aws.ec2.Vpc:
        child = pulumi.ResourceOptions(parent=self)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        # The default security group allows all traffic between its members; nothing should use it.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg-locked", vpc_id=vpc.id, ingress=[], egress=[], opts=child)
        return vpc

    def _subnet(
        self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc, zone: pulumi.Input[str], cidr: str, public: bool
    ) -> aws.ec2.Subnet:
        """A subnet tagged for the AWS Load Balancer Controller's discovery: internet-facing load
        balancers go in the public ones (`elb`), internal ones in the private ones (`internal-elb`)."""
        return aws.ec2.Subnet(
            name,
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zone,
            # Said explicitly where it matters: nothing launched in a public subnet gets a public address.
            map_public_ip_on_launch=False if public else None,
            tags={
                "Name": name,
                f"kubernetes.io/role/{'elb' if public else 'internal-elb'}": "1",
                f"kubernetes.io/cluster/{args.cluster_name}": "shared",
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _route_table(
        self, name: str, vpc: aws.ec2.Vpc, default_route: aws.ec2.RouteTableRouteArgs
    ) -> aws.ec2.RouteTable:
        return aws.ec2.RouteTable(
            name, vpc_id=vpc.id, routes=[default_route], tags={"Name": name}, opts=pulumi.ResourceOptions(parent=self)
        )

    def _associate(self, name: str, subnet: aws.ec2.Subnet, routes: aws.ec2.RouteTable) -> None:
        aws.ec2.RouteTableAssociation(
            name, subnet_id=subnet.id, route_table_id=routes.id, opts=pulumi.ResourceOptions(parent=self)
        )

    def _create_public_subnets(
        self,
        name: str,
        args: NetworkArgs,
        vpc: aws.ec2.Vpc,
        internet_gateway: aws.ec2.InternetGateway,
        zones_and_cidrs: Iterable[tuple[pulumi.Input[str], str]],
    ) -> list[aws.ec2.Subnet]:
        """One per AZ, for NAT gateways and internet-facing load balancers only: no public IPs on launch."""
        public_routes = self._route_table(
            f"{name}-public", vpc, aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=internet_gateway.id)
        )
        subnets: list[aws.ec2.Subnet] = []
        for index, (zone, cidr) in enumerate(zones_and_cidrs):
            subnet = self._subnet(f"{name}-public-{index}", args, vpc, zone, cidr, public=True)
            self._associate(f"{name}-public-{index}", subnet, public_routes)
            subnets.append(subnet)
        return subnets

    def _create_nat_gateways(
        self,
        name: str,
        args: NetworkArgs,
        public_subnets: list[aws.ec2.Subnet],
        internet_gateway: aws.ec2.InternetGateway,
    ) -> list[aws.ec2.NatGateway]:
        nat_count = args.availability_zone_count if args.nat_gateway_per_az else 1
        gateways: list[aws.ec2.NatGateway] = []
        for index in range(nat_count):
            address = aws.ec2.Eip(
                f"{name}-nat-{index}",
                domain="vpc",
                tags={"Name": f"{name}-nat-{index}"},
                opts=pulumi.ResourceOptions(parent=self),
            )
            gateway = aws.ec2.NatGateway(
                f"{name}-nat-{index}",
                allocation_id=address.id,
                subnet_id=public_subnets[index].id,
                tags={"Name": f"{name}-nat-{index}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[internet_gateway]),
            )
            gateways.append(gateway)
        return gateways

    def _create_private_subnets(
        self,
        name: str,
        args: NetworkArgs,
        vpc: aws.ec2.Vpc,
        nat_gateways: list[aws.ec2.NatGateway],
        zones_and_cidrs: Iterable[tuple[pulumi.Input[str], str]],
    ) -> tuple[list[aws.ec2.Subnet], list[aws.ec2.RouteTable]]:
        """One per AZ, for nodes, pods and databases; each with its own route table out through NAT."""
        subnets: list[aws.ec2.Subnet] = []
        route_tables: list[aws.ec2.RouteTable] = []
        for index, (zone, cidr) in enumerate(zones_and_cidrs):
            subnet = self._subnet(f"{name}-private-{index}", args, vpc, zone, cidr, public=False)
            # Each private subnet leaves through the NAT of its own AZ when there is one per AZ.
            nat = nat_gateways[index % len(nat_gateways)]
            routes = self._route_table(
                f"{name}-private-{index}",
                vpc,
                aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id),
            )
            self._associate(f"{name}-private-{index}", subnet, routes)
            subnets.append(subnet)
            route_tables.append(routes)
        return subnets, route_tables

    def _create_s3_endpoint(
        self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc, route_tables: list[aws.ec2.RouteTable]
    ) -> None:
        # S3 traffic (datasets, artifacts, prediction logs) stays on the AWS network and skips NAT charges.
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in route_tables],
            tags={"Name": f"{name}-s3"},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _flow_logs(self, name: str, vpc: aws.ec2.Vpc, retention_days: int) -> None:
        """Rejected and accepted traffic to CloudWatch: the audit trail incident response asks for first."""
        child = pulumi.ResourceOptions(parent=self)
        log_group = aws.cloudwatch.LogGroup(f"{name}-flow-logs", retention_in_days=retention_days, opts=child)
        trust = {"Effect": "Allow", "Principal": {"Service": "vpc-flow-logs.amazonaws.com"}, "Action": "sts:AssumeRole"}
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=policy_document([trust]),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=policy_document(
                [
                    {
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                        "Resource": [log_group.arn, pulumi.Output.concat(log_group.arn, ":*")],
                    }
                ]
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            opts=child,
        )
