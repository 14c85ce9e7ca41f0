import { describeNativeTools } from "./helpers/nativeToolsSuite.js";

// Hermes 2 Pro (a template node-llama-cpp cannot run) and gpt-oss (Harmony, whose forced calls take the JSON path).
describeNativeTools(["hermes", "harmony"], false);
