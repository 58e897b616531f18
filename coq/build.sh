#!/usr/bin/env bash
# Compile the Coq development (Coq 8.16, standard library only) in dependency order.
set -euo pipefail
cd "$(dirname "$0")"
for module in Sums Norms Matrix Propagation Compression Site; do
  coqc -q -R . Rhojax "$module.v"
done
