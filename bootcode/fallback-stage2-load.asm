; fallback-stage2-load.asm: loading and checking a stage (SELECTOR.md step 4), %include'd by
; fallback-stage2.asm (not built alone).

; Loads record [cur]'s sectors at 0000:7c00: at most 127 sectors per AH=42h call, never
; across a 64 KiB boundary (the buffer is SEG:0000, so the offset never wraps either).
load_stage:
        mov     si, [cur]
        mov     eax, [si + R_FIRST]
        mov     edx, [si + R_SECS]
        mov     bx, LOAD_SEG
.chunk:
        test    edx, edx
        jz      .done
        mov     cx, 0x1000              ; sectors left before the next 64 KiB boundary
        mov     di, bx
        and     di, 0x0fff
        sub     cx, di
        shr     cx, 5
        cmp     cx, 127
        jbe     .max
        mov     cx, 127
.max:
        movzx   ecx, cx
        cmp     ecx, edx
        jbe     .read
        mov     cx, dx
.read:
        push    es
        mov     es, bx
        xor     di, di
        call    read_sectors
        pop     es
        movzx   ecx, cx
        add     eax, ecx
        sub     edx, ecx
        shl     cx, 5
        add     bx, cx
        jmp     .chunk
.done:
        ret

; DI = 0 when the loaded stage passes (stage-table.ts checkStage 'ok' or 'unchecked'),
; else the reason: s_empty (first sector all zeros) or s_crc (recorded CRC differs).
check_stage:
        push    ds
        mov     ax, LOAD_SEG
        mov     ds, ax
        xor     si, si
        mov     cx, 256
.zero:
        lodsw
        test    ax, ax
        jnz     .data
        loop    .zero
        pop     ds
        mov     di, s_empty
        ret
.data:
        pop     ds
        cmp     byte [table_ok], 0
        je      .ok
        mov     cx, [TABLE + 12]
        mov     di, TABLE + 32
.find:
        jcxz    .ok
        mov     si, [cur]
        add     si, R_GUID
        call    guid_eq
        je      .record
        add     di, 32
        dec     cx
        jmp     .find
.record:
        mov     ecx, [di + 16]          ; length covered
        mov     si, [cur]
        mov     eax, [si + R_SECS]
        shl     eax, 9
        cmp     ecx, eax
        ja      .bad
        push    dword [di + 20]         ; recorded CRC
        call    stage_crc
        pop     edx
        cmp     eax, edx
        jne     .bad
.ok:
        xor     di, di
        ret
.bad:
        mov     di, s_crc
        ret

; EAX = CRC-32 of the first ECX bytes at 0000:7c00, 512 bytes per segment step.
stage_crc:
        mov     eax, -1
        mov     dx, LOAD_SEG
        push    ds
.block:
        jecxz   .done
        push    ecx
        cmp     ecx, 512
        jbe     .some
        mov     cx, 512
.some:
        mov     ds, dx
        xor     si, si
        push    cx
        call    crc_update
        pop     bx
        pop     ecx
        movzx   ebx, bx
        sub     ecx, ebx
        add     dx, 32
        jmp     .block
.done:
        pop     ds
        not     eax
        ret

