"""Calls: one session record per call, whichever door it came in by, with its audio, transcript and DTMF."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ticketing.masking import mask_phone


class Door(models.TextChoices):
    AUDIOSOCKET = "audiosocket", _("Asterisk AudioSocket")
    WEBSOCKET = "websocket", _("WebSocket 音频流")
    SIP = "sip", _("SIP 直连")
    CTI = "cti", _("CTI 事件（无音频）")


class Direction(models.TextChoices):
    INBOUND = "inbound", _("呼入")
    OUTBOUND = "outbound", _("呼出（回访）")


class CallStatus(models.TextChoices):
    RINGING = "ringing", _("振铃")
    ACTIVE = "active", _("通话中")
    HELD = "held", _("保持")
    ENDED = "ended", _("已结束")


class CallEventKind(models.TextChoices):
    RINGING = "ringing", _("振铃")
    ANSWERED = "answered", _("接听")
    HELD = "held", _("保持")
    RESUMED = "resumed", _("恢复通话")
    TRANSFERRED = "transferred", _("转接")
    HUNG_UP = "hungup", _("挂机")
    PROMPT = "prompt", _("播放语音提示")
    ALERT = "alert", _("紧急情况提示")


class TranscriptStatus(models.TextChoices):
    LIVE = "live", _("实时转写中")
    PENDING = "pending", _("待转写")
    DONE = "done", _("已转写")
    UNAVAILABLE = "unavailable", _("无语音模型")
    FAILED = "failed", _("转写失败")


class Call(models.Model):
    call_uuid = models.CharField(_("通话标识"), max_length=64, unique=True)
    door = models.CharField(_("接入方式"), max_length=16, choices=Door.choices)
    direction = models.CharField(_("方向"), max_length=16, choices=Direction.choices, default=Direction.INBOUND)
    hotline_line = models.CharField(_("热线号码"), max_length=16)
    caller_number = models.CharField(_("来电号码"), max_length=32, blank=True)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("坐席"), null=True, blank=True, on_delete=models.SET_NULL
    )
    agent_extension = models.CharField(_("坐席分机"), max_length=32, blank=True)
    status = models.CharField(_("状态"), max_length=16, choices=CallStatus.choices, default=CallStatus.RINGING)
    started_at = models.DateTimeField(_("开始时间"))
    answered_at = models.DateTimeField(_("接听时间"), null=True, blank=True)
    ended_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    end_reason = models.CharField(_("结束原因"), max_length=64, blank=True)
    audio_path = models.CharField(_("录音文件"), max_length=300, blank=True)
    sample_rate = models.PositiveIntegerField(_("采样率"), default=8000)
    transcript_status = models.CharField(
        _("转写状态"), max_length=16, choices=TranscriptStatus.choices, default=TranscriptStatus.PENDING
    )
    ticket = models.ForeignKey(
        "ticketing.Ticket",
        verbose_name=_("关联工单"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="calls",
    )
    # The ticket draft filler's memory (telephony.drafting): what it read from the transcript, with evidence
    # and phone numbers masked ("found"), a fingerprint of the value it last wrote into each ticket field
    # ("set": a field whose value no longer matches was changed by the agent and is left alone), the user
    # it created the draft as ("owner") and how many segments it read ("segments").
    draft_fields = models.JSONField(_("智能填单记录"), default=dict, blank=True)

    class Meta:
        verbose_name = _("通话")
        verbose_name_plural = _("通话")
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["caller_number", "-started_at"]),
            models.Index(fields=["transcript_status", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.hotline_line} {mask_phone(self.caller_number)} {self.started_at:%Y-%m-%d %H:%M}"


class TranscriptSegment(models.Model):
    """A final stretch of recognised speech with its time in the call."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="segments")
    index = models.PositiveIntegerField()
    text = models.TextField()
    start_ms = models.PositiveIntegerField()
    end_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["call_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["call", "index"], name="transcript_segment_unique_index"),
            models.CheckConstraint(
                condition=models.Q(end_ms__gte=models.F("start_ms")), name="segment_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.call_id}#{self.index}"


class Dtmf(models.Model):
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="dtmf")
    digit = models.CharField(max_length=1)
    at_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["call_id", "at_ms", "id"]

    def __str__(self) -> str:
        return f"{self.call_id}:{self.digit}@{self.at_ms}"


class CallEvent(models.Model):
    """The call's trail: what the PBX, the door or the transcript said happened, and when. Append-only."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("事件"), max_length=16, choices=CallEventKind.choices)
    occurred_at = models.DateTimeField(_("时间"))
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("坐席"), null=True, blank=True, on_delete=models.SET_NULL
    )
    agent_extension = models.CharField(_("坐席分机"), max_length=32, blank=True)
    data = models.JSONField(_("数据"), default=dict, blank=True)

    class Meta:
        ordering = ["call_id", "occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.call_id}:{self.kind}@{self.occurred_at:%H:%M:%S}"


class AgentStateKind(models.TextChoices):
    AVAILABLE = "available", _("空闲")
    ON_CALL = "on_call", _("通话中")
    WRAP_UP = "wrap_up", _("话后处理")
    AWAY = "away", _("暂离")


class AgentState(models.Model):
    """Where an agent is now: free for the next call, on one, finishing one, or away from the seat. One row per
    agent, changed in place (the calls' trail and the ticket trail say what happened; this says what is)."""

    agent = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("坐席"), on_delete=models.CASCADE, related_name="agent_state"
    )
    state = models.CharField(_("状态"), max_length=16, choices=AgentStateKind.choices, default=AgentStateKind.AVAILABLE)
    since = models.DateTimeField(_("开始时间"))
    # The call the agent is on or wrapping up; empty when available or away.
    call = models.ForeignKey(
        Call, verbose_name=_("通话"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("坐席状态")
        verbose_name_plural = _("坐席状态")
        indexes = [models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"{self.agent_id}:{self.state}"
