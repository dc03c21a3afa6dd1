#!/usr/bin/env bash
# The independent S3 clients `lakeguard serve` is tested with: boto3 (python3) and the AWS CLI.
#
# Usage: scripts/s3-clients.sh install
#
#   install   Installs Debian's python3-boto3 and awscli with apt-get when `python3 -c
#             'import boto3'` or `aws --version` fails; does nothing when both work (any
#             installation: pip, pyenv or Debian). Idempotent. Prints the versions found.
#
# Needs root for apt-get (runs it through sudo when not root). The integration test
# test/integration/serve.test.ts calls it before it starts.
set -euo pipefail

log() { printf '[s3-clients] %s\n' "$*" >&2; }

SUDO=()
[[ "$(id -u)" == 0 ]] || SUDO=(sudo)

# Each check starts python3 once (seconds on a loaded machine): the versions come from it too.
boto3_version() { python3 -c 'import boto3; print(boto3.__version__)' 2>/dev/null; }
aws_version() { aws --version 2>&1 | grep -m1 '^aws-cli/'; }

cmd_install() {
  local boto3 aws
  boto3="$(boto3_version)" || true
  aws="$(aws_version)" || true
  if [[ -z "$boto3" || -z "$aws" ]]; then
    log "boto3 or the AWS CLI is missing; installing python3-boto3 and awscli with apt-get"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update >&2
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-boto3 awscli >&2
    boto3="$(boto3_version)" || { log "ERROR: python3 cannot import boto3 after the install"; exit 1; }
    aws="$(aws_version)" || { log "ERROR: aws does not run after the install"; exit 1; }
  fi
  log "boto3 $boto3, $aws"
}

case "${1:-}" in
  install) cmd_install ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
