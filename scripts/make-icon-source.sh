#!/usr/bin/env bash
# Draws the 1024×1024 source of the app icon (an upward arrow leaving a desk tray) with ImageMagick;
# `tauri icon` then derives every size the bundles need into icons/.
set -euo pipefail
out=${1:-icons/source.png}
convert -size 1024x1024 xc:none \
  -fill '#1f6feb' -draw 'roundrectangle 64,64 960,960 200,200' \
  -fill '#ffffff' -draw 'polygon 512,210 742,470 602,470 602,690 422,690 422,470 282,470' \
  -fill '#9ecbff' -draw 'roundrectangle 232,740 792,820 40,40' \
  "$out"
