export * from './classification.js';
export * from './ctc.js';
export * from './dictionary.js';
export * from './schema.js';
