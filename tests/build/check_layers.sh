#!/bin/sh
# check_layers.sh SRC: fails if a source file includes a header of a higher layer.
# Order: os < config < backend < frontend < stats < api. One exception: the backend updates
# stats/counters.hpp (the active-bytes counters) on its slow paths.
src=$1
rank() {
  case $1 in
    os) echo 0 ;; config) echo 1 ;; backend) echo 2 ;; frontend) echo 3 ;; stats) echo 4 ;; api) echo 5 ;;
    mallard) echo 0 ;;  # the public header: plain declarations, usable anywhere
    *) echo 9 ;;
  esac
}
bad=0
for f in $(find "$src" -name '*.cpp' -o -name '*.hpp' -o -name '*.inc'); do
  mine=$(rank "$(basename "$(dirname "$f")")")
  for inc in $(grep -o '#include "[a-z_]*/[a-z_]*\.[a-z]*"' "$f" | sed 's/#include "//; s/"$//'); do
    [ "$inc" = "stats/counters.hpp" ] && continue
    theirs=$(rank "${inc%%/*}")
    if [ "$theirs" -gt "$mine" ]; then
      echo "upward include: $f includes $inc"
      bad=1
    fi
  done
done
[ $bad = 0 ] && echo "layers ok"
exit $bad
