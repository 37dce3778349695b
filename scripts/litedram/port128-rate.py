#!/usr/bin/env python3
"""Sequential read rate and latency of LiteDRAM's controller on a 128-bit native port, simulated.

The OrangeCrab 85F's standalone core with `data_width: 128` (scripts/place-litedram.sh,
LIQSCAN_DRAM_WITH=extscan128) gives the scan block a port as wide as the controller, so no
converter stands between them. This script runs LiteDRAM 2024.12's own controller and crossbar
(`LiteDRAMCore`: bank machines, multiplexer, refresher) in migen simulation behind its DFI-level
PHY model (`litedram.phy.model.SDRAMPHYModel`), with what the generated core uses: module
MT41K256M16 at a 75 MHz sys clock, rate 1:2, the ECP5DDRPHY's CL, CWL and read latency (the
formulas of litedram/phy/ecp5ddrphy.py), default controller settings (as litedram_gen, whose
configuration sets none). A master like the scan block's reader offers a read of the next
128-bit word every cycle (its buffer of 512 words never runs out of credit in this window) and
takes every data word at once.
  scripts/.tools/venv/bin/python scripts/litedram/port128-rate.py [CYCLES]
Prints: the latency of the first read (command taken to data), 128-bit words per cycle over the
run and in the steady state (from the first word to the last), the gaps in the data (refresh,
row changes), and the commands in flight at most.

Not modelled: the PHY's IO (the ECP5 DDR primitives and read leveling) and the real DDR3L;
the memory's rows are cut to 8 (the model allocates a memory per bank; the timings, the
columns and the banks are the module's; a run of up to 8,192 words stays in them). The data
words are not checked (the model's initial image is laid out differently); the crossbar
returns a port's reads in order by construction.
"""
import math
import sys

from migen import Module, run_simulation
from litedram.common import PhySettings, get_default_cl, get_default_cwl, get_sys_latency, get_sys_phase
from litedram.core import LiteDRAMCore
from litedram.core.controller import ControllerSettings
from litedram.modules import MT41K256M16
from litedram.phy.model import SDRAMPHYModel

SYS_HZ = 75e6


def ecp5_settings():
    # As ECP5DDRPHY.__init__ computes them (litedram 2024.12), for 16 data bits and one rank.
    nphases, databits = 2, 16
    tck = 2 / (2 * 2 * SYS_HZ)
    cl, cwl = get_default_cl("DDR3", tck), get_default_cwl("DDR3", tck)
    cl_sys, cwl_sys = get_sys_latency(nphases, cl), get_sys_latency(nphases, cwl)
    return PhySettings(
        phytype="ECP5DDRPHY", memtype="DDR3", databits=databits, dfi_databits=4 * databits,
        nranks=1, nphases=nphases, rdphase=get_sys_phase(nphases, cl_sys, cl),
        wrphase=get_sys_phase(nphases, cwl_sys, cwl), cl=cl, cwl=cwl,
        read_latency=cl_sys + 10, write_latency=cwl_sys, read_leveling=True, bitslips=4, delays=8)


class Dut(Module):
    def __init__(self):
        module = MT41K256M16(SYS_HZ, "1:2")
        module.geom_settings.rowbits = 3  # the model's memory: 8 rows x 8 banks x 128 words
        module.nrows = 1 << 3
        settings = ecp5_settings()
        self.settings = settings
        self.submodules.phy = SDRAMPHYModel(module, settings)
        self.submodules.core = LiteDRAMCore(
            phy=self.phy, geom_settings=module.geom_settings, timing_settings=module.timing_settings,
            clk_freq=SYS_HZ, controller_settings=ControllerSettings())
        self.port = self.core.crossbar.get_port(data_width=128)


def run(cycles):
    dut = Dut()
    port = dut.port
    words = min(cycles, 1 << len(port.cmd.addr))
    log = {"cmd": [], "data": []}

    def master():
        addr = 0
        yield port.rdata.ready.eq(1)
        yield port.cmd.we.eq(0)
        for cyc in range(cycles):
            yield port.cmd.valid.eq(addr < words)
            yield port.cmd.addr.eq(addr)
            yield
            if (yield port.cmd.valid) and (yield port.cmd.ready):
                log["cmd"].append(cyc)
                addr += 1
            if (yield port.rdata.valid):
                log["data"].append(cyc)

    run_simulation(dut, master())
    return dut.settings, log


def main():
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
    settings, log = run(cycles)
    cmd, at = log["cmd"], log["data"]
    gaps = [(a, b - a) for a, b in zip(at, at[1:]) if b - a > 2]
    ci = di = inflight = 0
    for t in range(cycles):
        while ci < len(cmd) and cmd[ci] <= t:
            ci += 1
        while di < len(at) and at[di] <= t:
            di += 1
        inflight = max(inflight, ci - di)
    print(f"PHY settings: CL {settings.cl}, CWL {settings.cwl}, read_latency {settings.read_latency} sys cycles")
    print(f"cycles {cycles}: commands taken {len(cmd)}, words returned {len(at)}")
    print(f"first read: command taken at cycle {cmd[0]}, data at {at[0]}: latency {at[0] - cmd[0]} cycles")
    print(f"words/cycle over the run: {len(at) / cycles:.4f}")
    print(f"words/cycle from the first word to the last: {(len(at) - 1) / (at[-1] - at[0]):.4f}")
    print(f"steps between words above 2 cycles (cycle: step): "
          + ", ".join(f"{a}: {d}" for a, d in gaps))
    print(f"commands in flight at most: {inflight}")
    return 0 if at else 1


if __name__ == "__main__":
    sys.exit(main())
