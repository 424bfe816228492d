"""The mlops-platform policy pack: rules as plain functions (`checks`) and their pulumi-policy wrappers (`pack`)."""
