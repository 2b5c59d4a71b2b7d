#!/usr/bin/env bash
# Placeholder until the console's browser test lands: installs nothing.
exit 0
