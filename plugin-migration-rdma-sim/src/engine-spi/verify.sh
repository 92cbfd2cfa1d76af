#!/usr/bin/env bash
# Builds this plugin with its engine-SPI adapters (src/engine-spi) against another branch's platform
# (default: the migration engine's branch), in a scratch copy, and runs the given tests there.
#   plugin-migration-rdma-sim/src/engine-spi/verify.sh [BRANCH] [TEST-PATTERN]
# Nothing is installed into ~/.m2 and the branch's worktree is not touched.
set -euo pipefail
java_major() { "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }
if [ -z "${JAVA_HOME:-}" ] || [ "$(java_major "$JAVA_HOME/bin/java")" -lt 25 ] 2>/dev/null; then
  for d in /usr/lib/jvm/temurin-25-* /usr/lib/jvm/*25*; do [ -x "$d/bin/java" ] && { JAVA_HOME=$d; break; }; done
fi
[ -x "${JAVA_HOME:-}/bin/java" ] || { echo "verify.sh: no JDK 25 found (set JAVA_HOME)" >&2; exit 1; }
export JAVA_HOME PATH="$JAVA_HOME/bin:$PATH"
branch=${1:-migration}
tests=${2:-'RdmaSim*'}
here=$(cd "$(dirname "$0")/../.." && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
scratch=$(mktemp -d /tmp/rdma-engine-XXXXXX)
git -C "$repo" archive "$branch" | tar -x -C "$scratch"
rm -rf "$scratch/plugin-migration-rdma-sim"
mkdir -p "$scratch/plugin-migration-rdma-sim"
(cd "$here" && tar --exclude=./target -cf - .) | tar -x -C "$scratch/plugin-migration-rdma-sim"
cp -r "$here/src/engine-spi/main/." "$scratch/plugin-migration-rdma-sim/src/main/java/"
cp -r "$here/src/engine-spi/test/." "$scratch/plugin-migration-rdma-sim/src/test/java/"
cd "$scratch"
set +e
./mvnw -o -q -B -pl plugin-migration-rdma-sim -am verify -Dtest="$tests" -Dsurefire.failIfNoSpecifiedTests=false > build.log 2>&1
status=$?
set -e
grep -h "Tests run" plugin-migration-rdma-sim/target/surefire-reports/*.txt 2>/dev/null || true
if [ $status -eq 0 ]; then
  rm -rf "$scratch"
else
  grep -E "ERROR|FAIL" build.log | head -40
  echo "verify.sh: failed; the scratch build is kept in $scratch (build.log, plugin-migration-rdma-sim/target/surefire-reports)" >&2
fi
exit $status
