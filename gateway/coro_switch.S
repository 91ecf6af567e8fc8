/*
 * coro_switch.S - the context switch of coro.c, for x86_64 (System V) and aarch64 (AAPCS64).
 *
 *   void sff_coro__switch(void **save_sp, void *new_sp);
 *       Pushes the callee-saved state onto the current stack, stores the stack pointer in *save_sp,
 *       then loads new_sp (a value stored by an earlier switch or made by sff_coro__prepare) and
 *       pops the state found there, returning into the context that saved it.
 *
 *   void *sff_coro__prepare(void *stack_top, void (*entry)(void *), void *arg);
 *       Builds a switch frame below stack_top (rounded down to 16 bytes) and returns its address.
 *       Switching to it calls entry(arg) on an ABI-aligned stack with a zero frame pointer and no
 *       caller to unwind to; entry must never return (the trampoline traps if it does). On x86_64
 *       the new context starts with the caller's MXCSR and x87 control word.
 *
 * Both are hidden: only coro.c calls them. The frame layout below is private to this file.
 */

#if defined(__x86_64__)

/*
 * Frame (from the saved rsp up): mxcsr (4 bytes), x87 control word (2 bytes, padded to 4), r15,
 * r14, r13, r12, rbx, rbp, and the address the context resumes at. The control words are saved
 * because the ABI makes their control bits callee-saved, so a coroutine's rounding mode must not
 * leak into its resumer.
 */
    .text
    .globl sff_coro__switch
    .hidden sff_coro__switch
    .type sff_coro__switch, @function
    .p2align 4
sff_coro__switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    /* Not ret: the return stack predicts the caller of this call, which is never where we go, so
     * an indirect jump (predicted from branch history) makes a ping-pong about a third faster. */
    popq %rcx
    jmpq *%rcx
    .size sff_coro__switch, .-sff_coro__switch

/*
 * The first switch into a prepared frame "returns" here with rbx = arg and r12 = entry, and rsp
 * 16-byte aligned, so the call below enters entry with rsp + 8 aligned as the ABI requires.
 */
    .type trampoline, @function
    .p2align 4
trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq %rbx, %rdi
    callq *%r12
    ud2
    .cfi_endproc
    .size trampoline, .-trampoline

    .globl sff_coro__prepare
    .hidden sff_coro__prepare
    .type sff_coro__prepare, @function
    .p2align 4
sff_coro__prepare:
    andq $-16, %rdi
    /* 64 bytes of frame, then 16 zero bytes between the trampoline's stack pointer and the top. */
    leaq -80(%rdi), %rax
    stmxcsr (%rax)
    fnstcw 4(%rax)
    movq $0, 8(%rax)
    movq $0, 16(%rax)
    movq $0, 24(%rax)
    movq %rsi, 32(%rax)
    movq %rdx, 40(%rax)
    movq $0, 48(%rax)
    leaq trampoline(%rip), %rcx
    movq %rcx, 56(%rax)
    movq $0, 64(%rax)
    movq $0, 72(%rax)
    ret
    .size sff_coro__prepare, .-sff_coro__prepare

#elif defined(__aarch64__)

/*
 * Frame (from the saved sp up, 160 bytes): x19..x28, x29 (frame pointer), x30 (link register,
 * where the switch returns to), d8..d15. sp stays 16-byte aligned throughout, as the ABI requires.
 */
    .text
    .globl sff_coro__switch
    .hidden sff_coro__switch
    .type sff_coro__switch, %function
    .p2align 4
sff_coro__switch:
    sub sp, sp, #160
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #160
    ret
    .size sff_coro__switch, .-sff_coro__switch

/* The first switch into a prepared frame returns here with x19 = arg and x20 = entry. */
    .type trampoline, %function
    .p2align 4
trampoline:
    .cfi_startproc
    .cfi_undefined x30
    mov x0, x19
    blr x20
    brk #0
    .cfi_endproc
    .size trampoline, .-trampoline

    .globl sff_coro__prepare
    .hidden sff_coro__prepare
    .type sff_coro__prepare, %function
    .p2align 4
sff_coro__prepare:
    and x0, x0, #-16
    /* 160 bytes of frame, then 16 zero bytes between the trampoline's stack pointer and the top. */
    sub x0, x0, #176
    stp x2, x1, [x0, #0]
    stp xzr, xzr, [x0, #16]
    stp xzr, xzr, [x0, #32]
    stp xzr, xzr, [x0, #48]
    stp xzr, xzr, [x0, #64]
    adr x9, trampoline
    stp xzr, x9, [x0, #80]
    stp xzr, xzr, [x0, #96]
    stp xzr, xzr, [x0, #112]
    stp xzr, xzr, [x0, #128]
    stp xzr, xzr, [x0, #144]
    stp xzr, xzr, [x0, #160]
    ret
    .size sff_coro__prepare, .-sff_coro__prepare

#endif

#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack,"",@progbits
#endif
