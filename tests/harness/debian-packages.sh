#!/usr/bin/env bash
# Installs the Debian packages a test or benchmark target needs, where their command is
# missing, in one apt-get run; then prints the version each package has here and fails,
# naming it, where that is older than the oldest the project is known to work with.
#
#   tests/harness/debian-packages.sh PACKAGE:COMMAND:MINIMUM ...
#
# No exact build is pinned: Debian's security archive keeps only the newest build of a
# package, so a pinned build stops installing the day an update replaces it. The release's
# current build installs on any day; the minimum says what the tests rely on.
set -euo pipefail

missing=()
for spec in "$@"; do
  IFS=: read -r package command _ <<<"$spec"
  command -v "$command" >/dev/null || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "installing Debian packages (the release's current builds): ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for spec in "$@"; do
  IFS=: read -r package command minimum <<<"$spec"
  if ! command -v "$command" >/dev/null; then
    echo "error: $command is still missing after installing Debian's $package" >&2
    exit 1
  fi
  version=$(dpkg-query -W -f='${Version}' "$package" 2>/dev/null || true)
  if [[ -z $version ]]; then
    # Installed some other way (a vendor's package, a build of one's own): used as it is.
    echo "  $command: $(command -v "$command") (not Debian's $package)"
  elif dpkg --compare-versions "$version" ge "$minimum"; then
    echo "  $package $version"
  else
    echo "error: Debian's $package is $version here; the tests need $minimum or newer" >&2
    exit 1
  fi
done
