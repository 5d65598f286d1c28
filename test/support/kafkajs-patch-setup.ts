// sources/kafka/kafkajs-patch.ts, before any test file loads kafkajs
import "../../sources/kafka/kafkajs-patch.js";
