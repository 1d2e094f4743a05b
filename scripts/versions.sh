# shellcheck shell=bash
# Sourced by every script that needs a pinned version: sets each NAME of
# scripts/versions.env that the environment does not already set (so
# `KUBEVIRT_VERSION=v1.8.2 scripts/kind-up.sh` still overrides). Not run.
versions_file=${BASH_SOURCE[0]%/*}/versions.env
while IFS='=' read -r versions_name versions_value; do
  case $versions_name in '' | '#'*) continue ;; esac
  if [ -z "${!versions_name:-}" ]; then
    printf -v "$versions_name" '%s' "$versions_value"
    # shellcheck disable=SC2163 # exports the variable named by versions_name
    export "$versions_name"
  fi
done <"$versions_file"
unset versions_name versions_value versions_file
