; test-stage-a.asm: test boot stage "A" (see test-stage-common.asm).
%define STAGE_NAME "A"
%include "test-stage-common.asm"
