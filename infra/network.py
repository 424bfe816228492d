"""The VPC every other component lives in: public and private subnets per AZ, NAT, S3 endpoint."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


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
        child = pulumi.ResourceOptions(parent=self)

        zones = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(parent=self))
        zone_names = [zones.names[index] for index in range(args.availability_zone_count)]
        private_cidrs, public_cidrs = subnet_cidrs(args.cidr, args.availability_zone_count)

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

        internet_gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=internet_gateway.id)],
            tags={"Name": f"{name}-public"},
            opts=child,
        )

        public_subnets: list[aws.ec2.Subnet] = []
        for index, (zone, cidr) in enumerate(zip(zone_names, public_cidrs, strict=True)):
            subnet = aws.ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={
                    "Name": f"{name}-public-{index}",
                    "kubernetes.io/role/elb": "1",
                    f"kubernetes.io/cluster/{args.cluster_name}": "shared",
                },
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}", subnet_id=subnet.id, route_table_id=public_routes.id, opts=child
            )
            public_subnets.append(subnet)

        nat_count = args.availability_zone_count if args.nat_gateway_per_az else 1
        nat_gateways: list[aws.ec2.NatGateway] = []
        for index in range(nat_count):
            address = aws.ec2.Eip(f"{name}-nat-{index}", domain="vpc", tags={"Name": f"{name}-nat-{index}"}, opts=child)
            nat_gateways.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{index}",
                    allocation_id=address.id,
                    subnet_id=public_subnets[index].id,
                    tags={"Name": f"{name}-nat-{index}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[internet_gateway]),
                )
            )

        private_subnets: list[aws.ec2.Subnet] = []
        private_route_tables: list[aws.ec2.RouteTable] = []
        for index, (zone, cidr) in enumerate(zip(zone_names, private_cidrs, strict=True)):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                tags={
                    "Name": f"{name}-private-{index}",
                    "kubernetes.io/role/internal-elb": "1",
                    f"kubernetes.io/cluster/{args.cluster_name}": "shared",
                },
                opts=child,
            )
            # Each private subnet leaves through the NAT of its own AZ when there is one per AZ.
            nat = nat_gateways[index % nat_count]
            routes = aws.ec2.RouteTable(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags={"Name": f"{name}-private-{index}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}", subnet_id=subnet.id, route_table_id=routes.id, opts=child
            )
            private_subnets.append(subnet)
            private_route_tables.append(routes)

        # S3 traffic (datasets, artifacts, prediction logs) stays on the AWS network and skips NAT charges.
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in private_route_tables],
            tags={"Name": f"{name}-s3"},
            opts=child,
        )

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

    def _flow_logs(self, name: str, vpc: aws.ec2.Vpc, retention_days: int) -> None:
        """Rejected and accepted traffic to CloudWatch: the audit trail incident response asks for first."""
        child = pulumi.ResourceOptions(parent=self)
        log_group = aws.cloudwatch.LogGroup(f"{name}-flow-logs", retention_in_days=retention_days, opts=child)
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:DescribeLogStreams",
                            ],
                            "Resource": [log_group.arn, pulumi.Output.concat(log_group.arn, ":*")],
                        }
                    ],
                }
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
