/* cfi.h: how to find a frame's caller on x86-64, from the DWARF call-frame information every
 * module carries in .eh_frame (the tables C++ exceptions unwind with).
 *
 * The shim unwinds inside malloc, where it may not wait for any lock a thread can hold while
 * it allocates: not libunwind's (held across dl_iterate_phdr), not the loader lock (held by
 * every dl_iterate_phdr callback, which may allocate). So the module that holds a pc is found
 * with glibc's _dl_find_object (2.35 and later), which is lock-free and async-signal-safe, and
 * the rule for the pc is read from the module's .eh_frame_hdr search table and .eh_frame.
 * Context: SIGSAFE -- no locks, no allocation; reads only the modules' mapped tables. */
#ifndef HW_CFI_H
#define HW_CFI_H

#include <stdbool.h>
#include <stdint.h>
#include "hw.h"

/* DWARF register numbers of x86-64. */
#define HW_DW_RBP 6
#define HW_DW_RSP 7

/* How to recover the caller's registers from a frame executing at pc. */
struct hw_cfi_rule {
    uint8_t cfa_reg;    /* the canonical frame address is cfa_reg + cfa_off (HW_DW_RSP/RBP) */
    bool cfa_deref;     /* ... or *(cfa_reg + cfa_off): gcc's stack realignment in main() */
    bool end;           /* the return address is undefined: the outermost frame */
    bool signal;        /* a signal trampoline: the interrupted registers are a ucontext at sp */
    bool rbp_saved;     /* the caller's rbp is saved at cfa + rbp_off; else rbp is unchanged */
    bool rbp_lost;      /* the caller's rbp cannot be recovered (a rule this unwinder skips) */
    int32_t cfa_off;
    int32_t ra_off;     /* the return address is at cfa + ra_off */
    int32_t rbp_off;
};

/* glibc's _dl_find_object (2.35 and later), found by the caller with dlsym; NULL without it,
 * and then every lookup fails. Returns whether it is there. */
struct dl_find_object;
typedef int (*hw_find_object_fn)(void *, struct dl_find_object *);
bool hw_cfi_init(hw_find_object_fn fn);
/* The rule for the frame executing at pc; `exact` when pc is the instruction itself (the
 * innermost frame, or one interrupted by a signal), false when it is a return address (the
 * call instruction before it is looked up). False when no CFI covers pc or it uses a form
 * this unwinder does not follow (the stack is then cut there). Context: SIGSAFE. */
bool hw_cfi_find(uintptr_t pc, bool exact, struct hw_cfi_rule *rule) HW_SIGSAFE;

#endif
