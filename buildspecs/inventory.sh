#!/bin/sh
# The inventory of an image: what is installed in it, one line per item,
#   <kind><TAB><name><TAB><version>
# with kind os (dpkg), runtime (node, npm, python, pip), npm (global npm
# packages) or pip (Python distributions). Verify runs it inside the image,
# on the image's own architecture:
#   docker run --rm --platform linux/$ARCH --entrypoint sh IMAGE -c "$(cat buildspecs/inventory.sh)"
# and keeps it in the verification record; Publish compares it with the
# inventory of the published image to decide whether anything changed.
#
# It needs only sh in the image (no jq, no network) and reads nothing but
# what is installed. A tool the image does not have is skipped, not an
# error: node images have no pip, python images no npm. A tool that is
# there and fails is an error, so that an image whose inventory cannot be
# taken is never taken for unchanged.
set -eu

tab=$(printf '\t')

# Installed packages only ("ii"): a removed package whose configuration
# files remain ("rc") is not in the image's content.
if command -v dpkg-query > /dev/null 2>&1; then
  dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Version}\n' |
    while IFS="$tab" read -r status name version; do
      case $status in
        ii*) printf 'os\t%s\t%s\n' "$name" "$version" ;;
      esac
    done
fi

if command -v node > /dev/null 2>&1; then
  v=$(node --version)
  printf 'runtime\tnode\t%s\n' "${v#v}"
fi
if command -v npm > /dev/null 2>&1; then
  printf 'runtime\tnpm\t%s\n' "$(npm --version)"
  # The global packages npm itself reports (npm, corepack, ...), by name.
  # shellcheck disable=SC2016 # JavaScript, not shell: the quotes keep it whole
  npm ls --global --depth=0 --json |
    node -e 'let s = ""; process.stdin.on("data", (d) => { s += d; }).on("end", () => {
      const deps = JSON.parse(s || "{}").dependencies || {};
      for (const name of Object.keys(deps).sort()) console.log(`npm\t${name}\t${deps[name].version || ""}`);
    });'
fi

for python in python3 python; do
  if command -v "$python" > /dev/null 2>&1; then
    printf 'runtime\tpython\t%s\n' "$("$python" -c 'import platform; print(platform.python_version())')"
    # Every distribution the interpreter can import, pip or not: the
    # standard library's importlib.metadata, so an image without pip has an
    # inventory too.
    "$python" -c 'import importlib.metadata as m
seen = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if name and name.lower() not in seen:
        seen[name.lower()] = (name, d.version)
for key in sorted(seen):
    print("pip\t%s\t%s" % seen[key])'
    if "$python" -m pip --version > /dev/null 2>&1; then
      printf 'runtime\tpip\t%s\n' "$("$python" -m pip --version | cut -d ' ' -f 2)"
    fi
    break
  fi
done
