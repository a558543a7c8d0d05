#!/usr/bin/env bash
# System packages the simulators need (Debian bookworm). Touches no apt source except adding
# bookworm-backports, which apt ranks below bookworm (priority 100, NotAutomatic), so only the
# packages asked for with `-t bookworm-backports` come from it: Mesa 25's lavapipe Vulkan driver,
# which SAPIEN (ManiSkill3) needs even for state observations; bookworm's Mesa 22.3 lacks
# descriptorBindingPartiallyBound. MetaWorld's OSMesa frames are byte-identical under Mesa 22 and 25.
set -euo pipefail
pkgs=(libegl1 libgl1 libosmesa6 libglib2.0-0 libvulkan1 ffmpeg git)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
updated=0
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && updated=1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mesa_major=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | cut -d. -f1 || true)
if [ "${mesa_major:-0}" -lt 25 ] 2>/dev/null; then
  src=/etc/apt/sources.list.d/pirl-bookworm-backports.sources
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf '%s\n' "Types: deb" "URIs: http://deb.debian.org/debian" "Suites: bookworm-backports" \
      "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" >"$src"
    updated=0
  fi
  [ "$updated" = 1 ] || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -t bookworm-backports mesa-vulkan-drivers >/dev/null
fi
