#!/usr/bin/env bash
# System packages the simulators need (Debian bookworm). Touches no apt source except adding
# bookworm-backports, pinned so that only the Mesa/Vulkan packages come from it.
set -euo pipefail
pkgs=(libegl1 libgl1 libosmesa6 libglib2.0-0 libvulkan1 ffmpeg git)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
