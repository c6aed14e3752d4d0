export * from './db-postprocess.js';
export * from './ocr.js';
