#!/usr/bin/env bash
# Renders calibration / evaluation images of text with a real font (DejaVu, ImageMagick), seeded so
# every run makes the same files. Usage: make_calib_images.sh OUT_DIR KIND COUNT
#   KIND det: 640x640 pages with several lines of varied text, sizes, colours and positions
#   KIND rec: 320x48 single text lines;  KIND cls: 192x48 lines, every third one upside down
set -euo pipefail
OUT=${1:?out dir}
KIND=${2:?det|rec|cls}
COUNT=${3:-40}
CONVERT=/usr/bin/convert  # Debian's ImageMagick, not any wrapper earlier on PATH
FONT_DIR=/usr/share/fonts/truetype/dejavu
FONTS=("$FONT_DIR/DejaVuSans.ttf" "$FONT_DIR/DejaVuSerif.ttf" "$FONT_DIR/DejaVuSansMono.ttf"
       "$FONT_DIR/DejaVuSans-Bold.ttf")
[[ -x "$CONVERT" ]] || { echo "make_calib_images: $CONVERT not found (apt-get install imagemagick)" >&2; exit 1; }
for f in "${FONTS[@]}"; do [[ -f "$f" ]] || FONTS=("$FONT_DIR/DejaVuSans.ttf"); done

WORDS=(invoice total amount date quantity price order number customer address street city
       payment received thank you shipping handling tax subtotal receipt station platform
       departure arrival gate seat coach ticket valid until route express local north south
       2026 14:35 42.50 1,299.00 No.7 A-113 ID:5812 +49 030 555 0199 www.example.org
       quantization alignment scale zero point calibration tensor model kernel)
mkdir -p "$OUT"
# Every use of RANDOM stays in this shell: bash reseeds RANDOM in a subshell, so a $(...) that read
# it made different images on every run.
RANDOM=$(( 1000 + ${#KIND} * 7 ))  # fixed seed per kind

line() {  # sets LINE to 2-6 random words
  local n=$(( 2 + RANDOM % 5 )) s=""
  for ((k = 0; k < n; k++)); do s+="${WORDS[RANDOM % ${#WORDS[@]}]} "; done
  LINE="${s% }"
}
rgb() {  # sets RGB to "rgb(r,g,b)", each channel base + RANDOM % span
  local r=$(( $1 + RANDOM % $2 )) g=$(( $3 + RANDOM % $4 )) b=$(( $5 + RANDOM % $6 ))
  RGB="rgb($r,$g,$b)"
}

for ((i = 0; i < COUNT; i++)); do
  file=$(printf "%s/%s_%03d.png" "$OUT" "$KIND" "$i")
  [[ -s "$file" ]] && continue
  rgb 200 56 200 56 195 61
  bg=$RGB
  case "$KIND" in
    det)
      args=(-size 640x640 "xc:$bg")
      lines=$(( 4 + RANDOM % 8 ))
      for ((l = 0; l < lines; l++)); do
        rgb 0 90 0 90 0 110
        line
        args+=(-font "${FONTS[RANDOM % ${#FONTS[@]}]}" -pointsize $(( 14 + RANDOM % 30 ))
               -fill "$RGB" -annotate "+$(( 10 + RANDOM % 160 ))+$(( 40 + l * 640 / (lines + 1) ))"
               "$LINE")
      done
      ;;
    rec|cls)
      w=320; [[ "$KIND" == cls ]] && w=192
      rgb 0 80 0 80 0 80
      line
      args=(-size "${w}x48" "xc:$bg" -font "${FONTS[RANDOM % ${#FONTS[@]}]}"
            -pointsize $(( 18 + RANDOM % 10 )) -fill "$RGB" -gravity west
            -annotate "+$(( 2 + RANDOM % 10 ))+0" "$LINE")
      if [[ "$KIND" == cls && $(( i % 3 )) -eq 2 ]]; then args+=(-rotate 180); fi
      ;;
    *) echo "make_calib_images: unknown kind $KIND" >&2; exit 2 ;;
  esac
  # No date/time chunks: the same seed gives byte-identical files.
  "$CONVERT" "${args[@]}" -type TrueColor -define png:exclude-chunks=date,time "PNG24:$file.part.png"
  mv "$file.part.png" "$file"
done
echo "make_calib_images: $COUNT $KIND images in $OUT"
