#!/usr/bin/env bash
# make fuzz-for FUZZ_SECONDS=3600: rounds of the model machines, each with a new random
# seed, until the time is up; prints the examples that ran. A violation stops it and
# prints the failing example (its reproduce_failure blob included). A round cut by the
# deadline is not counted.
set -u
cd "$(dirname "$0")/../.."
limit=${1:-3600}
end=$(($(date +%s) + limit))
C=${RAMP_MODEL_EXAMPLES:-300} B=${RAMP_MODEL_BG_EXAMPLES:-100} R=${RAMP_MODEL_ROUTE_EXAMPLES:-40}
K=${RAMP_MODEL_CHECK_EXAMPLES:-20} M=${RAMP_MODEL_MEASURE_EXAMPLES:-20}
G=${RAMP_MODEL_BG_GATEWAY_EXAMPLES:-40}
rounds=0 log=$(mktemp)
while left=$((end - $(date +%s))) && [ "$left" -gt 0 ]; do
    seed=$((RANDOM * 32768 + RANDOM))
    echo "fuzz: round $((rounds + 1)) (seed $seed) started"  # known if the round is cut
    RAMP_FUZZ=1 PYTHONHASHSEED=0 RAMP_MODEL_EXAMPLES=$C RAMP_MODEL_BG_EXAMPLES=$B \
        RAMP_MODEL_ROUTE_EXAMPLES=$R RAMP_MODEL_CHECK_EXAMPLES=$K RAMP_MODEL_MEASURE_EXAMPLES=$M \
        RAMP_MODEL_BG_GATEWAY_EXAMPLES=$G \
        timeout "$left" .venv/bin/pytest -q -p no:cacheprovider --timeout=0 \
        --hypothesis-seed="$seed" tests/model/test_model_based.py \
        tests/model/test_model_bluegreen.py tests/model/test_model_routes.py \
        tests/model/test_model_checks.py tests/model/test_model_measure.py \
        tests/model/test_model_bluegreen_routes.py tests/model/test_model_bluegreen_gateway.py \
        >"$log" 2>&1
    rc=$?
    [ "$rc" -eq 124 ] && break
    if [ "$rc" -ne 0 ]; then
        cat "$log"
        echo "fuzz: a violation in round $((rounds + 1)) (seed $seed)"
        exit 1
    fi
    rounds=$((rounds + 1))
    echo "fuzz: round $rounds (seed $seed) passed; $((end - $(date +%s))) s left"
done
echo "fuzz: $rounds rounds in ${limit} s, no violation: $((rounds * C)) canary, $((rounds * B))" \
    "blue-green, $((rounds * R)) route, $((rounds * K)) check, $((rounds * M)) measurement," \
    "$((rounds * R)) blue-green route, $((rounds * G)) blue-green gateway examples"
