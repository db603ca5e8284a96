; fallback-stage2-io.asm: the selector's messages, %include'd by fallback-stage2.asm (not built alone).
; Trace lines go to COM1 only; the fatal messages also go to the screen (INT 10h AH=0Eh).

; COM1's 16550: no interrupts, divisor 1 (115200 baud), 8N1, FIFOs on, DTR + RTS.
uart_init:
        mov     dx, COM1 + 1
        xor     al, al
        out     dx, al
        mov     dx, COM1 + 3
        mov     al, 0x80                ; DLAB = 1
        out     dx, al
        mov     dx, COM1
        mov     al, 1
        out     dx, al
        inc     dx
        xor     al, al
        out     dx, al
        mov     dx, COM1 + 3
        mov     al, 0x03                ; DLAB = 0, 8N1
        out     dx, al
        mov     dx, COM1 + 2
        mov     al, 0xc7
        out     dx, al
        mov     dx, COM1 + 4
        mov     al, 0x03
        out     dx, al
        ret

; AL to COM1, once the transmit holding register is empty (LSR bit 5).
putc:
        push    dx
        push    ax
        mov     dx, COM1 + 5
.wait:
        in      al, dx
        test    al, 0x20
        jz      .wait
        pop     ax
        mov     dx, COM1
        out     dx, al
        pop     dx
        ret

; The zero-terminated string at SI to COM1.
puts:
        push    ax
        push    si
.next:
        lodsb
        test    al, al
        jz      .done
        call    putc
        jmp     .next
.done:
        pop     si
        pop     ax
        ret

; AX in decimal to COM1.
put_dec:
        pusha
        xor     cx, cx
        mov     bx, 10
.digit:
        xor     dx, dx
        div     bx
        push    dx
        inc     cx
        test    ax, ax
        jnz     .digit
.out:
        pop     ax
        add     al, '0'
        call    putc
        loop    .out
        popa
        ret

; "DMSEL <SI> ok|bad" for a GPT copy (AL = valid).
trace_gpt:
        mov     di, s_ok
        test    al, al
        jnz     trace_text
        mov     di, s_bad
; "DMSEL <SI><DI>" + CR LF.
trace_text:
        pusha
        push    si
        mov     si, s_dmsel
        call    puts
        pop     si
        call    puts
        mov     si, di
        call    puts
        mov     si, s_crlf
        call    puts
        popa
        ret

; "DMSEL <SI> <entry number of [cur]>" (trace_cur) and then DI's text (trace_cur_di).
trace_cur:
        mov     di, s_none + 5          ; the empty string
trace_cur_di:
        pusha
        push    si
        mov     si, s_dmsel
        call    puts
        pop     si
        call    puts
        mov     al, ' '
        call    putc
        mov     si, [cur]
        mov     ax, [si + R_INDEX]
        inc     ax                      ; GPT partition numbers count from 1
        call    put_dec
        mov     si, di
        call    puts
        mov     si, s_crlf
        call    puts
        popa
        ret

err_read:
        mov     si, msg_read
; SELECTOR.md step 6: the message at SI on COM1 and the screen, then halt.
fatal:
        push    si
        call    puts
        mov     si, s_crlf
        call    puts
        mov     si, s_halt              ; "DMSEL halt": the last line, for tests and logs
        mov     di, s_crlf
        call    trace_text
        pop     si
.screen:
        lodsb
        test    al, al
        jz      .halt
        mov     ah, 0x0e
        mov     bx, 7
        int     0x10
        jmp     .screen
.halt:
        cli
        hlt
        jmp     .halt
