export * from './schema.js';
export * from './image.js';
