"""Policy as code for the mlops-platform stacks (`pulumi preview --policy-pack policies`)."""
