#!/usr/bin/env bash
# Placeholder until the LocalStack lane lands: installs nothing.
exit 0
