#!/usr/bin/env bash
# Release one module of ws_poc: check, update its CHANGELOG, commit, and tag. Never pushes.
#
#   deploy/release.sh <module> <version>      e.g. deploy/release.sh ws-single v1.2.0
#   make release-single VERSION=v1.2.0        (release-multi, release-loadtest)
#
# module: ws-single | ws-multi | loadtest (or single | multi).
# Refuses unless: the version is semver with a leading v (Go module tags), it is newer than the
# module's last tag, the work tree is clean, the module's tests pass (`make test/<module>`;
# SKIP_TESTS=1 skips them, for the release dry-run test only), and the CHANGELOG's
# [Unreleased] section has something in it. Then it moves [Unreleased] under the new version,
# commits <module>/CHANGELOG.md and creates the annotated tag <module>/<version>.
# Publish afterwards by hand: git push origin HEAD <module>/<version>
set -euo pipefail

die() {
	echo "release: $*" >&2
	exit 1
}

[ $# -eq 2 ] || die "usage: $0 <ws-single|ws-multi|loadtest> <vX.Y.Z>"
module=$1
version=$2
case $module in
single | multi) module=ws-$module ;;
ws-single | ws-multi | loadtest) ;;
*) die "unknown module \"$module\": want ws-single, ws-multi or loadtest" ;;
esac

root=$(git rev-parse --show-toplevel) || die "not inside a git repository"
cd "$root"
changelog=$module/CHANGELOG.md
[ -f "$changelog" ] || die "$changelog does not exist"

# semver.org's grammar, with the v that Go module tags need.
num='(0|[1-9][0-9]*)'
ident='([0-9A-Za-z-]+)'
semver_re="^v$num\\.$num\\.$num(-$ident(\\.$ident)*)?(\\+$ident(\\.$ident)*)?\$"
[[ $version =~ $semver_re ]] || die "version \"$version\" is not semver (want vMAJOR.MINOR.PATCH[-PRERELEASE])"
[[ $version != *+* ]] || die "version \"$version\": build metadata (+...) is not allowed in Go module tags"

# cmp_ident a b: prints -1, 0 or 1 comparing two pre-release identifiers (semver 11.4.1-3).
cmp_ident() {
	local a=$1 b=$2
	if [[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ ]]; then
		if ((10#$a < 10#$b)); then echo -1; elif ((10#$a > 10#$b)); then echo 1; else echo 0; fi
	elif [[ $a =~ ^[0-9]+$ ]]; then
		echo -1
	elif [[ $b =~ ^[0-9]+$ ]]; then
		echo 1
	elif [[ $a < $b ]]; then
		echo -1
	elif [[ $a > $b ]]; then
		echo 1
	else
		echo 0
	fi
}

# semver_cmp a b: prints -1, 0 or 1 by semver precedence (v prefix, no build metadata).
semver_cmp() {
	local a=${1#v} b=${2#v}
	local a_core=${a%%-*} b_core=${b%%-*} a_pre="" b_pre=""
	[[ $a == *-* ]] && a_pre=${a#*-}
	[[ $b == *-* ]] && b_pre=${b#*-}
	local -a x y
	IFS=. read -ra x <<<"$a_core"
	IFS=. read -ra y <<<"$b_core"
	local i
	for i in 0 1 2; do
		if ((10#${x[i]} < 10#${y[i]})); then echo -1; return; fi
		if ((10#${x[i]} > 10#${y[i]})); then echo 1; return; fi
	done
	# A version without pre-release ranks above the same version with one.
	if [[ -z $a_pre && -z $b_pre ]]; then echo 0; return; fi
	if [[ -z $a_pre ]]; then echo 1; return; fi
	if [[ -z $b_pre ]]; then echo -1; return; fi
	IFS=. read -ra x <<<"$a_pre"
	IFS=. read -ra y <<<"$b_pre"
	local n=${#x[@]} c
	((${#y[@]} > n)) && n=${#y[@]}
	for ((i = 0; i < n; i++)); do
		if ((i >= ${#x[@]})); then echo -1; return; fi
		if ((i >= ${#y[@]})); then echo 1; return; fi
		c=$(cmp_ident "${x[i]}" "${y[i]}")
		if [[ $c != 0 ]]; then echo "$c"; return; fi
	done
	echo 0
}

# The module's highest existing tag by semver precedence (not by date: a patch release of an
# older line may be tagged after a newer one).
last=""
while IFS= read -r tag; do
	v=${tag#"$module"/}
	[[ $v =~ $semver_re ]] || continue
	if [[ -z $last || $(semver_cmp "$v" "$last") == 1 ]]; then last=$v; fi
done < <(git tag --list "$module/v*")
if [[ -n $last && $(semver_cmp "$version" "$last") != 1 ]]; then
	die "version $version is not newer than the last release $module/$last"
fi

if [[ -n $(git status --porcelain) ]]; then
	die "the work tree is not clean (commit or remove these first):
$(git status --short)"
fi

# The [Unreleased] section: its heading line and whether anything but blank lines follows it
# before the next version heading.
unreleased_line=$(grep -n -m1 -E '^## \[Unreleased\]' "$changelog" | cut -d: -f1) ||
	die "$changelog has no \"## [Unreleased]\" section"
notes=$(awk -v start="$unreleased_line" 'NR > start && /^## \[/ { exit } NR > start && NF { print }' "$changelog")
[[ -n $notes ]] || die "$changelog: nothing under [Unreleased] to release"

if [[ ${SKIP_TESTS:-} == 1 ]]; then
	echo "release: SKIP_TESTS=1: not running make test/$module" >&2
else
	make test/"$module" || die "make test/$module failed"
	[[ -z $(git status --porcelain) ]] || die "the tests left the work tree dirty"
fi

date=$(date -u +%Y-%m-%d)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# Keep an empty [Unreleased] on top; what was under it now sits under the new version.
awk -v start="$unreleased_line" -v heading="## [${version#v}] - $date" '
	{ print }
	NR == start { print ""; print heading }
' "$changelog" >"$tmp"
cat "$tmp" >"$changelog"

git add -- "$changelog"
git commit -q -m "$module: release $version" -- "$changelog"
git tag -a "$module/$version" -m "$module $version

$notes"
echo "release: tagged $module/$version on $(git rev-parse --short HEAD); publish with: git push origin HEAD $module/$version"
