#!/bin/sh
# The inventory of an image: what is installed in it. Verify runs it inside
# the image, on the image's own architecture:
#   docker run --rm --platform linux/$ARCH --entrypoint sh IMAGE -c "$(cat buildspecs/inventory.sh)"
# and keeps what it prints in the verification record; Publish compares it
# with the inventory of the published image to decide whether anything
# changed.
#
# It prints, first, the distribution's os-release and the OS package
# database it finds, each raw, between two marker lines:
#   %evergreen-inventory<TAB>file<TAB><path>
#   <the file, byte for byte>
#   %evergreen-inventory<TAB>end<TAB><path>
# (a newline precedes the end marker, so a file without a final newline
# still ends where it ends); Go parses them (internal/stage/inventory.go),
# whatever the family: dpkg's status on Debian and Ubuntu, the apk database
# on Alpine. No line of os-release, of dpkg's status or of the apk database
# starts with "%", so the markers cannot be mistaken for content. Then one
# line per runtime item,
#   <kind><TAB><name><TAB><version>
# with kind runtime (node, npm, python, pip), npm (global npm packages) or
# pip (Python distributions).
#
# It needs only sh and cat in the image (busybox will do: no jq, no
# network) and reads nothing but what is installed. A file or tool the
# image does not have is skipped, not an error: node images have no pip,
# python images no npm, Alpine no dpkg. A file that is there but cannot be
# read, or a tool that is there and fails, is an error, so that an image
# whose inventory cannot be taken is never taken for unchanged.
#
# One process per runtime, reading package metadata from disk rather than
# running npm or pip: arm64 images are verified under emulation in the
# rehearsal, where starting npm or importing pip costs tens of seconds.
set -eu

marker='%evergreen-inventory'

# frame FILE prints FILE between the markers; nothing when it is absent.
frame() {
  [ -e "$1" ] || return 0
  printf '%s\tfile\t%s\n' "$marker" "$1"
  if ! cat "$1"; then
    echo "inventory: cannot read $1" >&2
    exit 1
  fi
  printf '\n%s\tend\t%s\n' "$marker" "$1"
}

# os-release(5): /etc/os-release, else /usr/lib/os-release.
if [ -e /etc/os-release ]; then
  frame /etc/os-release
else
  frame /usr/lib/os-release
fi
frame /var/lib/dpkg/status
frame /lib/apk/db/installed

# Node.js, and the global packages in npm's default global folder
# (<prefix>/lib/node_modules, <prefix> being node's install prefix, as npm
# computes it), npm among them.
if command -v node > /dev/null 2>&1; then
  # shellcheck disable=SC2016 # JavaScript, not shell: the quotes keep it whole
  node -e 'const fs = require("fs"), path = require("path");
    console.log(`runtime\tnode\t${process.versions.node}`);
    const root = path.resolve(process.execPath, "..", "..", "lib", "node_modules");
    const names = [];
    for (const d of fs.existsSync(root) ? fs.readdirSync(root).sort() : []) {
      if (d.startsWith("@")) for (const s of fs.readdirSync(path.join(root, d)).sort()) names.push(`${d}/${s}`);
      else if (!d.startsWith(".")) names.push(d);
    }
    for (const n of names) {
      const file = path.join(root, n, "package.json");
      if (!fs.existsSync(file)) continue;
      const version = JSON.parse(fs.readFileSync(file, "utf8")).version || "";
      if (n === "npm") console.log(`runtime\tnpm\t${version}`);
      console.log(`npm\t${n}\t${version}`);
    }'
fi

# Python, and every distribution it can import, pip or not (the standard
# library's importlib.metadata), pip's version among them.
for python in python3 python; do
  if command -v "$python" > /dev/null 2>&1; then
    "$python" -c 'import importlib.metadata as m, platform
print("runtime\tpython\t%s" % platform.python_version())
seen = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if name and name.lower() not in seen:
        seen[name.lower()] = (name, d.version)
for key in sorted(seen):
    if key == "pip":
        print("runtime\tpip\t%s" % seen[key][1])
    print("pip\t%s\t%s" % seen[key])'
    break
  fi
done
