/** The `boot` commands as library functions: diskmint's fallback boot-stage selector (bootcode/SELECTOR.md). */
export { bootStatus, bootSimulate, type BootStatus, type BootStageInfo, type BootSimulation } from './status.js';
export { bootUpdate, type BootUpdateOptions, type BootUpdateResult } from './update.js';
export { bootConfirm, type BootConfirmResult } from './confirm.js';
export { installSelector, type InstallSelectorResult } from './install.js';
