// Audio thread: collect the microphone's 128-sample render quanta into ~100 ms blocks of
// 16-bit PCM and hand them to the page, which sends them as protocol v1 binary frames.
class PcmSender extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.frames = options.processorOptions.blockFrames;
    this.block = new Int16Array(this.frames);
    this.filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length) {
      const frames = channels[0].length;
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (let c = 0; c < channels.length; c++) sum += channels[c][i];
        const v = Math.max(-1, Math.min(1, sum / channels.length));
        this.block[this.filled++] = v < 0 ? v * 32768 : v * 32767;
        if (this.filled === this.frames) {
          // transferring the buffer detaches this.block: start a fresh one
          this.port.postMessage(this.block.buffer, [this.block.buffer]);
          this.block = new Int16Array(this.frames);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm-sender", PcmSender);
