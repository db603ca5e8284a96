; diskmint-hello.efi: the smallest UEFI application we can write by hand.
; Prints a line on the console (OVMF mirrors it to the serial port) and returns EFI_SUCCESS,
; so the firmware goes on to its next boot option.
; PE32+ layout per the Microsoft PE/COFF specification; EFI_SYSTEM_TABLE and
; EFI_SIMPLE_TEXT_OUTPUT_PROTOCOL offsets per UEFI 2.10 sections 4.3 and 12.4.
; Build: bootcode/build-uefi-hello.sh (nasm -f bin -o bootcode/diskmint-hello.efi bootcode/uefi-hello.asm)

bits 64
default rel

FILE_ALIGN    equ 0x200
SECT_ALIGN    equ 0x1000
TEXT_RVA      equ 0x1000

dos_header:
    db 'MZ'                     ; e_magic
    times 0x3a db 0
    dd pe_header                ; e_lfanew (offset 0x3c)

pe_header:
    db 'PE', 0, 0
    dw 0x8664                   ; Machine: x86-64
    dw 1                        ; NumberOfSections
    dd 0                        ; TimeDateStamp: fixed (deterministic)
    dd 0, 0                     ; PointerToSymbolTable, NumberOfSymbols
    dw optional_end - optional  ; SizeOfOptionalHeader
    dw 0x0022                   ; Characteristics: EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE (relocations not stripped: the code is position-independent)

optional:
    dw 0x20b                    ; Magic: PE32+
    db 0, 0                     ; linker version
    dd text_size                ; SizeOfCode
    dd 0, 0                     ; SizeOfInitializedData, SizeOfUninitializedData
    dd TEXT_RVA + (entry - text_start) ; AddressOfEntryPoint
    dd TEXT_RVA                 ; BaseOfCode
    dq 0x400000                 ; ImageBase
    dd SECT_ALIGN               ; SectionAlignment
    dd FILE_ALIGN               ; FileAlignment
    dw 0, 0, 0, 0, 0, 0         ; OS, image, subsystem versions
    dd 0                        ; Win32VersionValue
    dd TEXT_RVA + SECT_ALIGN    ; SizeOfImage
    dd FILE_ALIGN               ; SizeOfHeaders
    dd 0                        ; CheckSum
    dw 10                       ; Subsystem: EFI_APPLICATION
    dw 0                        ; DllCharacteristics
    dq 0x10000, 0x1000, 0x10000, 0x1000 ; stack and heap reserve/commit
    dd 0                        ; LoaderFlags
    dd 16                       ; NumberOfRvaAndSizes
    times 16 dq 0               ; data directories: none (no imports, no relocations needed)
optional_end:

section_table:
    db '.text', 0, 0, 0
    dd SECT_ALIGN               ; VirtualSize
    dd TEXT_RVA                 ; VirtualAddress
    dd text_size                ; SizeOfRawData
    dd FILE_ALIGN               ; PointerToRawData
    dd 0, 0                     ; relocations, line numbers
    dw 0, 0
    dd 0x60000020               ; CODE | EXECUTE | READ

    times FILE_ALIGN - ($ - $$) db 0

text_start:
entry:                          ; EFI_STATUS efi_main(EFI_HANDLE rcx, EFI_SYSTEM_TABLE *rdx)
    sub rsp, 40                 ; 32 bytes of shadow space, keeps rsp 16-byte aligned
    mov rcx, [rdx + 64]         ; SystemTable->ConOut (UEFI 2.10 section 4.3.1)
    lea rdx, [message]
    call [rcx + 8]              ; ConOut->OutputString(ConOut, message) (section 12.4.3)
    xor eax, eax                ; EFI_SUCCESS
    add rsp, 40
    ret

message:
    dw __utf16__('DISKMINT-UEFI-HELLO: a UEFI program from diskmint'), 13, 10, 0

    align 16, db 0
text_end:
text_size equ FILE_ALIGN
    times FILE_ALIGN - (text_end - text_start) db 0
