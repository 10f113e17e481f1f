#!/usr/bin/env bash
# Stop the pool that start.sh brought up (jobs included).
exec bash "$(dirname "$0")/start.sh" stop
