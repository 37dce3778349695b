// Clock rate of built Verilated card models, side by side: each library given is loaded, its
// card reset and clocked idle back to back for N cycles; prints the cycles per CPU second of
// this thread. For comparing Verilator or compiler options on the same Verilog (the models
// sim/src/card/verilated/model.rs builds are in <target>/verilated/<key>/libvcard.so).
//   cc -O2 -Isim/src/card/verilated -o /tmp/vcard-rate scripts/vcard-rate.c -ldl
//   /tmp/vcard-rate 600000 A/libvcard.so B/libvcard.so ...   (repeat, alternating, on a busy machine)
// The structs are vcard.h's (ABI version 2); only the inputs are set.
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "vcard.h"

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s CYCLES LIBVCARD.so...\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    for (int k = 2; k < argc; k++) {
        void* lib = dlopen(argv[k], RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            fprintf(stderr, "%s: %s\n", argv[k], dlerror());
            return 1;
        }
        uint32_t (*abi)(void) = (uint32_t (*)(void))dlsym(lib, "vcard_abi_version");
        void* (*make)(void) = (void* (*)(void))dlsym(lib, "vcard_new");
        void (*cycle)(void*, const VcardIn*, VcardOut*) =
            (void (*)(void*, const VcardIn*, VcardOut*))dlsym(lib, "vcard_cycle");
        void (*drop)(void*) = (void (*)(void*))dlsym(lib, "vcard_free");
        if (!abi || !make || !cycle || !drop || abi() != 2) {
            fprintf(stderr, "%s: not a vcard library of ABI version 2\n", argv[k]);
            return 1;
        }
        void* card = make();
        VcardIn in = {0};
        VcardOut out;
        in.bar_wstrb = 0xF, in.bar_bready = 1, in.bar_rready = 1;
        in.reset = 1;  // the next cycle's: the card starts in reset
        cycle(card, &in, &out);
        in.reset = 0;
        cycle(card, &in, &out);
        in.rd_arready = 1, in.wr_awready = 1;
        double t = cpu_seconds();
        for (long i = 0; i < n; i++) cycle(card, &in, &out);
        t = cpu_seconds() - t;
        printf("%s: %.0f cycles per CPU second (%ld cycles, %.3f s)\n", argv[k], n / t, n, t);
        drop(card);
    }
    return 0;
}
