// Entry file (package.json `main`): registers adxSink, elasticsearchSink and changeHistory.
import { registerSinks } from './host/registerSinks.js';

registerSinks(process.env);
