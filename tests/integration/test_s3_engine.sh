#!/usr/bin/env bash
# The engine (versions, racing committers, lost replies) on the S3 backend
# against the real S3 server.  See docs/testing.md.
exec bash "$DSQ_SRC/tests/s3/with_rgw.sh" "$DSQ_BUILD/tests/check_engine_s3"
