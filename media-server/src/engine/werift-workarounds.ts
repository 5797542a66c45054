import { PictureLossIndication, RtcpPayloadSpecificFeedback, type RTCPeerConnection, type RTCRtpSender } from 'werift';

/**
 * werift 0.25.2 leaks every stopped sender: `setDtlsTransport` subscribes the
 * sender to the (bundled, long-lived) DTLS transport's state changes and
 * `stop()` never unsubscribes, so the transport keeps each sender ever used —
 * with its 128-packet retransmission cache — until the whole peer connection
 * closes. A participant who stays while others come and go grew by about
 * half a megabyte per visitor. Once a sender is stopped we drop that
 * subscription ourselves (it only announces `connected`, which a stopped
 * sender has no use for).
 */
export function releaseStoppedSender(sender: RTCRtpSender): void {
  const disposers = (sender as unknown as { dtlsDisposer?: unknown }).dtlsDisposer;
  if (!Array.isArray(disposers)) return;
  for (const dispose of disposers.splice(0)) if (typeof dispose === 'function') dispose();
}

/**
 * werift's router hands a PLI to whatever its table holds under the PLI's
 * *sender* SSRC before trying the media SSRC the PLI is about — and its table
 * also holds the SSRCs a remote offer announced, so a PLI can land on a
 * receiver and never reach the sender it asks (seen with werift peers; Chrome
 * happens to use SSRC 1 as the sender of its feedback). Keyframe requests are
 * therefore read from the transport's RTCP directly: `onRequest` gets the
 * media SSRC of every PLI and FIR. Returns the unsubscribe function.
 */
export function onKeyframeRequests(pc: RTCPeerConnection, onRequest: (mediaSsrc: number) => void): () => void {
  const subscriptions = pc.dtlsTransports.map((transport) =>
    transport.onRtcp.subscribe((packet) => {
      if (!(packet instanceof RtcpPayloadSpecificFeedback)) return;
      const feedback = packet.feedback;
      if (feedback instanceof PictureLossIndication) onRequest(feedback.mediaSsrc);
      // A FIR (werift does not export its class) names its media in its entries.
      else if ('fir' in feedback && Array.isArray(feedback.fir)) for (const entry of feedback.fir as { ssrc: number }[]) onRequest(entry.ssrc);
    }),
  );
  return () => subscriptions.forEach((s) => s.unSubscribe());
}
