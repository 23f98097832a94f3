"""The SIP door: a SIP user agent on sippy that answers calls to a hotline line directly (no PBX), takes
G.711 (PCMU/PCMA) over RTP, plays the greeting back and hands the audio to `telephony.pipeline.CallPipeline`.

`g711.py` the codec tables, `sdp.py` offer/answer, `rtp.py` RTP on sippy's RTP stack, `server.py` the user
agent and its threading model. `manage.py run_sip` serves it.
"""
