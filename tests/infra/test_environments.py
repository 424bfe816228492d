"""The environments really differ: what dev saves money on, prod pays for."""

from __future__ import annotations

from tests.infra.conftest import Plan, inputs_of, of_type


def test_dev_is_cheap_single_nat_small_unprotected_databases(plans: dict[str, Plan]) -> None:
    dev = plans["dev"]
    assert len(of_type(dev, "aws:ec2/natGateway:NatGateway")) == 1
    for instance in inputs_of(dev, "aws:rds/instance:Instance"):
        assert instance["multiAz"] is False
        assert instance["deletionProtection"] is False
        assert instance["instanceClass"].startswith("db.t4g.")
    gpu = [g for g in inputs_of(dev, "aws:eks/nodeGroup:NodeGroup") if g["amiType"].endswith("NVIDIA")]
    assert all(group["scalingConfig"]["minSize"] == 0 for group in gpu)
    (cluster,) = inputs_of(dev, "aws:eks/cluster:Cluster")
    assert cluster["vpcConfig"]["endpointPublicAccess"] is True
    assert cluster["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_prod_survives_an_az_and_protects_its_data(plans: dict[str, Plan]) -> None:
    prod = plans["prod"]
    assert len(of_type(prod, "aws:ec2/natGateway:NatGateway")) == 3
    zones = {subnet["availabilityZone"] for subnet in inputs_of(prod, "aws:ec2/subnet:Subnet")}
    assert len(zones) == 3
    for instance in inputs_of(prod, "aws:rds/instance:Instance"):
        assert instance["multiAz"] is True
        assert instance["deletionProtection"] is True
        assert instance["backupRetentionPeriod"] >= 30
        assert instance["skipFinalSnapshot"] is False and instance["finalSnapshotIdentifier"]
    (cluster,) = inputs_of(prod, "aws:eks/cluster:Cluster")
    assert cluster["vpcConfig"]["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in cluster["vpcConfig"]


def test_every_deployer_can_reach_the_api_it_deploys_to(plans: dict[str, Plan]) -> None:
    """dev and staging: the public endpoint, only from the stack's deployer CIDRs (placeholders in the
    shipped files, refused by `pulumi up`); prod: the private endpoint, from a runner in the VPC."""
    for stack, public in {"dev": True, "staging": True, "prod": False}.items():
        (cluster,) = inputs_of(plans[stack], "aws:eks/cluster:Cluster")
        vpc = cluster["vpcConfig"]
        assert vpc["endpointPrivateAccess"] is True, stack
        assert vpc["endpointPublicAccess"] is public, stack
        assert vpc.get("publicAccessCidrs", []) == (["203.0.113.0/24"] if public else []), stack


def test_each_private_subnet_routes_through_a_nat_in_prod(plans: dict[str, Plan]) -> None:
    private_routes = [
        table for table in of_type(plans["prod"], "aws:ec2/routeTable:RouteTable") if "private" in table["name"]
    ]
    nat_targets = {table["inputs"]["routes"][0]["natGatewayId"] for table in private_routes}
    assert len(private_routes) == 3 and len(nat_targets) == 3


def test_private_subnets_are_tagged_for_internal_load_balancers(plan: Plan) -> None:
    subnets = of_type(plan, "aws:ec2/subnet:Subnet")
    for subnet in subnets:
        tags = subnet["inputs"]["tags"]
        role = "kubernetes.io/role/internal-elb" if "private" in subnet["name"] else "kubernetes.io/role/elb"
        assert tags[role] == "1"
        assert subnet["inputs"].get("mapPublicIpOnLaunch") in (False, None)
    (endpoint,) = inputs_of(plan, "aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint["vpcEndpointType"] == "Gateway" and endpoint["serviceName"].endswith(".s3")


def test_plans_are_deterministic() -> None:
    from infra.offline_plan import render_stack, to_json

    assert to_json(render_stack("staging")) == to_json(render_stack("staging"))
