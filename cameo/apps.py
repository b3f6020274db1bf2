from django.apps import AppConfig


class CameoConfig(AppConfig):
    name = "cameo"

    def ready(self) -> None:
        from cameo import receivers
        from cameo.services import verification_case_resolve
        from moderation.hooks import register_case_resolver

        # Staff decide the recordings the verifier could not; the effect is applied here.
        register_case_resolver("cameo_verification", verification_case_resolve)
        # A parent's cap on a teen's cameo audience is a consent change.
        receivers.connect()
