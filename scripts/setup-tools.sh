#!/usr/bin/env bash
# Installs the external tools the default test run needs: Verilator and Icarus (co-simulation
# of the generated Verilog), yosys (validation) and nats-server (the JetStream tests of
# liqscan-nats start their own on loopback). Idempotent; quiet when all are present.
# The ECP5 synthesis/place-and-route tools come from PyPI and are installed only by
# scripts/build-bitstream.sh, since the default tests do not need them.
set -euo pipefail
need=()
command -v verilator >/dev/null || need+=(verilator)
# The Verilated card (sim/src/card/verilated) compiles Verilator's C++ with make and g++.
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v iverilog >/dev/null || need+=(iverilog)
command -v yosys >/dev/null || need+=(yosys)
# Debian installs it in /usr/sbin, which a non-root PATH may lack.
[ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null || need+=(nats-server)
if [ ${#need[@]} -gt 0 ]; then
    echo "setup-tools: installing ${need[*]} from Debian" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
verilator --version
iverilog -V 2>/dev/null | head -1
yosys -V
{ [ -x /usr/sbin/nats-server ] && /usr/sbin/nats-server --version; } || nats-server --version
