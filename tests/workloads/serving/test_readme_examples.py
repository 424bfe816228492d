"""The README's `curl` examples for /classify_array, run as written against the real digits service:
each must answer the class its next line documents (they once sent the scans' 0-16 scale as uint8,
which the service reads as 0-255, and got a wrong class)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess

from workloads.serving.local import REPOSITORY_ROOT, LocalModelService

DOCUMENTED_URL = "http://127.0.0.1:3000"


def _examples() -> list[tuple[str, str]]:
    """(curl command, the class its following line shows) for every /classify_array example."""
    lines = (REPOSITORY_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    examples = []
    for index, line in enumerate(lines):
        if line.startswith("curl ") and "/classify_array" in line:
            documented = re.search(r'"class": "([^"]+)"', lines[index + 1])
            assert documented, f"README line {index + 2} must show the class this example answers"
            examples.append((line, documented.group(1)))
    return examples


def test_the_readme_array_examples_answer_what_they_say(digits_service: LocalModelService) -> None:
    examples = _examples()
    assert len(examples) >= 2  # the quick start's and the serving section's
    for command, documented_class in examples:
        arguments = shlex.split(command.replace(DOCUMENTED_URL, digits_service.url))
        completed = subprocess.run([*arguments, "--silent", "--show-error"], capture_output=True, text=True, timeout=60)
        assert completed.returncode == 0, completed.stderr
        answer = json.loads(completed.stdout)
        prediction = answer["predictions"][0]
        assert prediction["class"] == documented_class, (command[:80], answer)
        assert prediction["confidence"] > 0.9, answer
