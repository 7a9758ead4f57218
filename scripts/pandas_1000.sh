#!/usr/bin/env bash
# The ≥1,000-chunk corpus of bench/bench_kv_layouts.py: Debian's python-pandas-doc user guide, 23 pages
# as a user would save them (Sphinx navigation included), less the TOC page and the three largest API
# reference pages (io, style, cookbook). Usage: scripts/pandas_1000.sh [DEST] (default /tmp/pandas-1000).
set -euo pipefail
dest=${1:-/tmp/pandas-1000}
src=/usr/share/doc/python-pandas-doc/html/user_guide
if [ ! -d "$src" ]; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python-pandas-doc
fi
mkdir -p "$dest/corpus"
for page in "$src"/*.html; do
  case "$(basename "$page")" in index.html|io.html|style.html|cookbook.html) continue ;; esac
  cp "$page" "$dest/corpus/"
done
echo "$(ls "$dest/corpus" | wc -l) pages in $dest/corpus"
