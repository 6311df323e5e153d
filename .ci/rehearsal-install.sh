#!/usr/bin/env bash
# Installs what the pipeline rehearsal (go run ./cmd/rehearse, docs/rehearsal.md)
# needs on a Debian machine. Not an install-*.sh on purpose: `make setup` must
# not pull in podman, qemu and a registry for every test run. Idempotent.
# moto (S3, SSM, SNS, CloudWatch) comes from make setup (.ci/install-moto.sh),
# Go from the machine (the Tool stage builds cmd/evergreen with it).
#
#   podman, buildah          build the runtime Dockerfiles, run the self-tests
#   qemu-user-static,
#   binfmt-support           run arm64 builds and self-tests on an amd64 host
#   debootstrap              trixie root file systems for the base stand-ins
#   docker-registry          distribution 2.8: the stand-in for ECR's registry
#   apache2-utils            htpasswd: the registry's authentication
#   uidmap, fuse-overlayfs   podman's storage helpers
set -euo pipefail

packages=(podman buildah qemu-user-static binfmt-support debootstrap docker-registry
  apache2-utils uidmap)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} > 0)); then
  echo "rehearsal-install: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The registry package starts a service on :5000 where systemd runs; the
  # rehearsal starts its own registry on a free 127.0.0.1 port instead.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# arm64 under emulation: binfmt_misc is not mounted on a fresh machine.
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 2>/dev/null || true
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --import qemu-aarch64 || true
  update-binfmts --enable qemu-aarch64
fi
grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
  echo "rehearsal-install: warning: qemu-aarch64 is registered without the F flag" >&2
echo "rehearsal-install: $(podman --version), $(buildah --version | cut -d' ' -f1-3), $(qemu-aarch64-static --version | head -n1)"
