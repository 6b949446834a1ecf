#!/usr/bin/env bash
# The README's lists of each subcommand's flags ("The `lethe` command", **Flags.**) against what
# `lethe CMD --help` prints: a flag in one but not the other, or a subcommand without a list,
# fails, named.
#   tests/readme_flags.sh BUILD_DIR/tools/lethe README.md
set -euo pipefail
python3 - "$1" "$2" <<'PY'
import re, subprocess, sys
lethe, readme = sys.argv[1:3]

def run(*args):
    return subprocess.run([lethe, *args], capture_output=True, text=True, check=True).stdout

# The README's lists: the nested items after the line naming this test, up to the first line that
# is not indented. An item is "- `cmd`, `cmd`: `--flag`, `--flag`, ...", wrapped over indented lines.
lines = open(readme).read().splitlines()
start = next(i for i, line in enumerate(lines) if "tests/readme_flags.sh" in line) + 1
items = []
for line in lines[start:]:
    if not line.startswith("  "):
        break
    if line.lstrip().startswith("- "):
        items.append(line.strip()[2:])
    elif items:
        items[-1] += " " + line.strip()
documented = {}
for item in items:
    commands, flags = item.split(":", 1)
    for command in re.findall(r"`([a-z]+)`", commands):
        documented.setdefault(command, set()).update(re.findall(r"--[a-z0-9][a-z0-9-]*", flags))
assert documented, "no flag lists found after the line naming tests/readme_flags.sh"

# --help: the subcommands, then each one's options (lines "  --flag ..." or "  -h,--help ...").
top = run("--help")
commands = re.findall(r"^  ([a-z]+) ", top.split("Subcommands:", 1)[1], re.M)
failures = []
for command in commands:
    shown = set(re.findall(r"^  (?:-[a-z],)?(--[a-z0-9-]+)", run(command, "--help"), re.M)) - {"--help"}
    listed = documented.pop(command, None)
    if listed is None:
        failures.append(f"lethe {command}: no flag list in the README")
        continue
    failures += [f"lethe {command} {flag}: in --help, not in the README" for flag in sorted(shown - listed)]
    failures += [f"lethe {command} {flag}: in the README, not in --help" for flag in sorted(listed - shown)]
failures += [f"lethe {command}: in the README, but no such subcommand" for command in sorted(documented)]
for f in failures:
    print("FAIL:", f)
if failures:
    sys.exit(1)
print(f"readme_flags.sh: the README lists every flag of {len(commands)} subcommands, and only those")
PY
