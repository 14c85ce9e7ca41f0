export { ggufLimits, parseGguf, readGgufFile } from "./reader.js";
export { formatParameterCount, metadataNumber, metadataString, SYNTHETIC_KEY, summarizeModel } from "./summary.js";
export {
  CHATML_TEMPLATE,
  projectorPathFor,
  SYNTHETIC_IMAGE_TOKENS,
  type SynthOptions,
  type SynthPreset,
  type SynthQuant,
  synthesizeModel,
  synthesizeProjector,
  synthPresets,
  synthQuants,
  visionPresets,
  writeSyntheticModel,
} from "./synth.js";
export { floatToHalf } from "./synthWeights.js";
export { FileType, fileTypeNames, TensorType, tensorTypes } from "./tensorTypes.js";
export * from "./types.js";
export {
  encodeGguf,
  encodeGgufToBuffer,
  type GgufTensorToWrite,
  type GgufToWrite,
  layoutGguf,
  writeGgufFile,
} from "./writer.js";
