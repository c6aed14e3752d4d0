#!/usr/bin/env node
// Rewrites proto/model_config.proto from src/repository/triton-schema.ts (run `npm run build` first).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { modelConfigProto } from '../dist/src/grpc/model-config-proto.js';

const file = path.resolve(import.meta.dirname, '../proto/model_config.proto');
writeFileSync(file, modelConfigProto());
console.log(`wrote ${file}`);
