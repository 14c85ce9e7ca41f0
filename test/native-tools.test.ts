import { describeNativeTools } from "./helpers/nativeToolsSuite.js";

// Qwen2.5, Llama 3.1, Mistral Nemo: the JSON-object formats (test/native-tools-families.test.ts has the rest).
describeNativeTools(["qwen", "llama", "mistral"], true);
