"""Entry point Pulumi runs for `pulumi preview --policy-pack policies`.

Pulumi runs this file from the pack's directory, where the repository root is not importable:
the rules live in the sibling package `platform_policies`, imported from here.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from platform_policies.pack import build_policy_pack

build_policy_pack()
