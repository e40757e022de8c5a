#!/usr/bin/env bash
# The S3 backend against the real S3 server (Ceph RGW): operations,
# conditional writes, self-test, error messages, retries through the
# fault proxy, concurrent committers, credential refresh, latency figures.
# See docs/testing.md.
exec bash "$DSQ_SRC/tests/s3/with_rgw.sh" "$DSQ_BUILD/tests/check_store_s3"
