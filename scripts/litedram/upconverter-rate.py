#!/usr/bin/env python3
"""Read rate of LiteDRAM's native-port up-converter, simulated (migen) with a model controller.

The standalone core for the OrangeCrab 85F has a 128-bit controller (DDR3 burst of 8 x 16 bits)
and a 64-bit user port `terms`, so litedram_gen puts LiteDRAMNativePortUpConverter (64 -> 128,
litedram/frontend/adapter.py) between them. Its read path keeps one controller command in
flight: the command FSM's COMMIT state waits on a depth-0 FIFO that empties only when that
command's data has gone out of the port. This script measures the words a cycle a master like
the scan block's reader gets through it (a command offered every cycle at consecutive
addresses, rdata always taken) from a model controller port that takes a command every cycle
and returns each command's data LAT cycles later, in order.
  scripts/.tools/venv/bin/python scripts/litedram/upconverter-rate.py
(the venv scripts/gen-litedram.sh installs: litedram 2024.12, migen 0.10.0). Prints one line per
latency; the latency of the real controller and PHY is not modelled here.
"""
import sys

from migen import Module, run_simulation
from litedram.common import LiteDRAMNativePort
from litedram.frontend.adapter import LiteDRAMNativePortUpConverter


class Dut(Module):
    def __init__(self):
        self.port_from = LiteDRAMNativePort("both", 26, 64)
        self.port_to = LiteDRAMNativePort("both", 25, 128)
        self.submodules.conv = LiteDRAMNativePortUpConverter(self.port_from, self.port_to)


def run(lat, base, words, cycles):
    dut = Dut()
    got = []
    state = {"done": False}

    def master():
        # The reader: offers the next address every cycle, takes rdata whenever it comes.
        addr = base
        yield dut.port_from.rdata.ready.eq(1)
        for cyc in range(cycles):
            yield dut.port_from.cmd.valid.eq(addr < base + words)
            yield dut.port_from.cmd.we.eq(0)
            yield dut.port_from.cmd.addr.eq(addr)
            yield
            if (yield dut.port_from.cmd.valid) and (yield dut.port_from.cmd.ready):
                addr += 1
            if (yield dut.port_from.rdata.valid):
                got.append((cyc, (yield dut.port_from.rdata.data)))
        state["done"] = True

    def controller():
        # Takes a command every cycle; returns its 128-bit word (both halves numbered by the
        # narrow address) `lat` cycles later, in order.
        pending = []
        yield dut.port_to.cmd.ready.eq(1)
        cyc = 0
        while not state["done"]:
            out = [p for p in pending if p[0] == cyc]
            if out:
                a = out[0][1]
                yield dut.port_to.rdata.valid.eq(1)
                yield dut.port_to.rdata.data.eq(((2 * a + 1) << 64) | (2 * a))
            else:
                yield dut.port_to.rdata.valid.eq(0)
            yield
            if (yield dut.port_to.cmd.valid) and (yield dut.port_to.cmd.ready):
                pending.append((cyc + 1 + lat, (yield dut.port_to.cmd.addr)))
            pending = [p for p in pending if p[0] > cyc]
            cyc += 1

    run_simulation(dut, [master(), controller()])
    return got


def main():
    cycles = 4000
    print("latency (cycles) | words out in %d cycles | words/cycle | in order" % cycles)
    for lat in [1, 4, 8, 16, 24, 32]:
        got = run(lat, 0, 10**9, cycles)
        data = [d for _, d in got]
        ok = data == list(range(len(data)))
        print(f"{lat} | {len(got)} | {len(got) / cycles:.3f} | {ok}")
    # A read that ends in the low half of a 128-bit word (odd base): the last command waits
    # for a next address or cmd.last, which the standalone core's port does not expose.
    for base, n in [(0, 32), (1, 32)]:
        got = run(8, base, n, 2000)
        print(f"base {base}, {n} words, latency 8: {len(got)} words returned in 2000 cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
