import type { CheckinLanguage, ErrorCode, LocalizedText } from '@clinic-hub/protocol';

/** One text in each language the kiosk and the phone check-in page speak. */
export type Multilingual = Record<CheckinLanguage, string>;

export const LANGUAGE_NAMES: Multilingual = { ja: '日本語', en: 'English', zh: '中文', ko: '한국어' };

export const CHECKIN_TEXT = {
  title: { ja: '受付', en: 'Check in', zh: '挂号', ko: '접수' },
  chooseDept: { ja: '診療科を選んでください', en: 'Choose a department', zh: '请选择科室', ko: '진료과를 선택하세요' },
  haveAppointment: { ja: 'ご予約の方', en: 'I have an appointment', zh: '已预约', ko: '예약하신 분' },
  enterCode: { ja: 'お知らせに記載の予約番号（10桁）を入力してください', en: 'Enter the 10-digit appointment code from your reminder', zh: '请输入预约通知中的10位预约号码', ko: '예약 안내에 적힌 10자리 예약 번호를 입력하세요' },
  howToTell: { ja: '順番が近づいたらお知らせします。方法を選んでください', en: 'We will tell you when your turn is near. How?', zh: '轮到您之前我们会通知您。请选择方式', ko: '차례가 가까워지면 알려 드립니다. 방법을 선택하세요' },
  byQr: { ja: 'スマートフォンで確認（QRコード）', en: 'On my phone (QR code)', zh: '用手机查看（二维码）', ko: '스마트폰으로 확인 (QR 코드)' },
  byPage: { ja: 'このページでお知らせ', en: 'On this page', zh: '在此页面通知', ko: '이 페이지에서 알림' },
  bySms: { ja: 'SMS（携帯電話の番号）', en: 'Text message (SMS)', zh: '短信（手机号码）', ko: '문자 메시지 (휴대폰 번호)' },
  byLine: { ja: 'LINE', en: 'LINE', zh: 'LINE', ko: 'LINE' },
  enterPhone: { ja: '携帯電話の番号を入力してください', en: 'Enter your mobile number', zh: '请输入手机号码', ko: '휴대폰 번호를 입력하세요' },
  phoneHint: { ja: 'お知らせの送信にのみ使い、受付の終了後に消去します。', en: 'Used only to send you notices, and deleted after your visit.', zh: '仅用于发送通知，就诊结束后删除。', ko: '알림 발송에만 사용하며 진료 후 삭제합니다.' },
  ok: { ja: '決定', en: 'OK', zh: '确定', ko: '확인' },
  back: { ja: '戻る', en: 'Back', zh: '返回', ko: '뒤로' },
  clear: { ja: '消去', en: 'Clear', zh: '清除', ko: '지우기' },
  checkingIn: { ja: '受付しています…', en: 'Checking you in…', zh: '正在挂号…', ko: '접수 중입니다…' },
  yourNumber: { ja: 'あなたの番号', en: 'Your number', zh: '您的号码', ko: '귀하의 번호' },
  ahead: { ja: 'あなたの前に {n} 人', en: '{n} ahead of you', zh: '您前面还有 {n} 人', ko: '앞에 {n}명' },
  next: { ja: '次にお呼びします', en: 'You are next', zh: '下一位就是您', ko: '다음 차례입니다' },
  wait: { ja: '待ち時間の目安 約{n}分', en: 'About {n} min', zh: '预计等候约{n}分钟', ko: '예상 대기 약 {n}분' },
  appointmentAt: { ja: 'ご予約 {time}', en: 'Appointment {time}', zh: '预约 {time}', ko: '예약 {time}' },
  appointmentLate: { ja: '予約の時刻を過ぎているため、到着順にお呼びします。', en: 'You are past your appointment time: you will be called in order of arrival.', zh: '已过预约时间，将按到达顺序叫号。', ko: '예약 시간이 지나 도착 순서대로 호출합니다.' },
  scanQr: { ja: 'スマートフォンで読み取ると、順番の確認とお知らせの受け取りができます。', en: 'Scan with your phone to follow your turn and get notices.', zh: '用手机扫描即可查看顺序并接收通知。', ko: '스마트폰으로 스캔하면 순서를 확인하고 알림을 받을 수 있습니다.' },
  scanLine: { ja: 'LINEで読み取り、表示されたメッセージをそのまま送信してください。', en: 'Scan with LINE and send the message it shows.', zh: '用LINE扫描，并直接发送显示的消息。', ko: 'LINE으로 스캔한 뒤 표시된 메시지를 그대로 보내세요.' },
  smsSet: { ja: 'SMSでお知らせします。', en: 'We will text you.', zh: '我们将通过短信通知您。', ko: '문자로 알려 드립니다.' },
  print: { ja: '受付票を印刷', en: 'Print slip', zh: '打印挂号单', ko: '접수표 인쇄' },
  done: { ja: '終了', en: 'Done', zh: '完成', ko: '완료' },
  arrived: { ja: '到着しました（受付する）', en: 'I have arrived (check in)', zh: '我已到达（挂号）', ko: '도착했습니다 (접수)' },
  mobileOff: { ja: 'このQRコードからの受付は現在ご利用いただけません。受付またはキオスクをご利用ください。', en: 'Check-in from this QR code is not available. Please use the kiosk or reception.', zh: '目前无法通过此二维码挂号。请使用自助机或到前台。', ko: '이 QR 코드로는 현재 접수할 수 없습니다. 키오스크나 접수처를 이용하세요.' },
  closed: { ja: 'ただいま受付時間外です。次の受付開始：{when}', en: 'The clinic is closed now. Check-in opens: {when}', zh: '现在不在受理时间内。下次开始受理：{when}', ko: '지금은 접수 시간이 아닙니다. 다음 접수 시작: {when}' },
  closedNow: { ja: 'ただいま受付時間外です。', en: 'The clinic is closed now.', zh: '现在不在受理时间内。', ko: '지금은 접수 시간이 아닙니다.' },
  hours: { ja: '受付時間', en: 'Opening hours', zh: '受理时间', ko: '접수 시간' },
  outOfService: { ja: 'ただいまご利用いただけません。受付にお声がけください。', en: 'Out of service. Please go to reception.', zh: '暂停服务。请到前台。', ko: '현재 이용할 수 없습니다. 접수처로 가세요.' },
  tryAgain: { ja: 'もう一度お試しください。', en: 'Please try again.', zh: '请重试。', ko: '다시 시도하세요.' },
} satisfies Record<string, Multilingual>;

/** What a refused check-in says to the patient (the code is shown beside it for staff). */
export const CHECKIN_ERROR_TEXT: Partial<Record<ErrorCode, Multilingual>> = {
  APPOINTMENT_NOT_FOUND: { ja: '予約が見つかりません。番号をお確かめのうえ、もう一度入力するか受付にお声がけください。', en: 'No appointment with this code. Check the code and try again, or ask at reception.', zh: '找不到该预约。请确认号码后重试，或到前台咨询。', ko: '예약을 찾을 수 없습니다. 번호를 확인하고 다시 입력하거나 접수처에 문의하세요.' },
  APPOINTMENT_TOO_EARLY: { ja: '予約の時刻にはまだ早いため受付できません。時間をおいてお越しください。', en: 'It is too early for your appointment. Please come back closer to the time.', zh: '距离预约时间还早，暂不能挂号。请稍后再来。', ko: '예약 시간까지 아직 이릅니다. 시간에 맞춰 다시 오세요.' },
  APPOINTMENT_ALREADY_ARRIVED: { ja: 'この予約はすでに受付が終わっています。受付にお声がけください。', en: 'This appointment has already been checked in. Please ask at reception.', zh: '该预约已完成挂号。请到前台咨询。', ko: '이 예약은 이미 접수되었습니다. 접수처에 문의하세요.' },
  RATE_LIMITED: { ja: '混み合っています。少し待ってからもう一度お試しください。', en: 'Too many check-ins just now. Please wait a moment and try again.', zh: '目前人数较多，请稍候再试。', ko: '지금 접수가 많습니다. 잠시 후 다시 시도하세요.' },
  CHECKIN_DEPT_NOT_OFFERED: { ja: 'この診療科は受付窓口で受け付けます。', en: 'Please check in for this department at reception.', zh: '该科室请到前台挂号。', ko: '이 진료과는 접수처에서 접수합니다.' },
  CHECKIN_MOBILE_OFF: { ja: 'このQRコードからの受付は現在ご利用いただけません。受付またはキオスクをご利用ください。', en: 'Check-in from this QR code is not available. Please use the kiosk or reception.', zh: '目前无法通过此二维码挂号。请使用自助机或到前台。', ko: '이 QR 코드로는 현재 접수할 수 없습니다. 키오스크나 접수처를 이용하세요.' },
  CHECKIN_CLOSED: { ja: 'ただいま受付時間外です。', en: 'The clinic is closed now.', zh: '现在不在受理时间内。', ko: '지금은 접수 시간이 아닙니다.' },
  STORE_UNAVAILABLE: { ja: 'ただいま混み合っています。もう一度お試しください。', en: 'The system is busy. Please try again.', zh: '系统繁忙，请重试。', ko: '시스템이 혼잡합니다. 다시 시도하세요.' },
};

/** `{n}`, `{time}`, `{when}` filled in. */
export function fill(text: string, values: Record<string, string | number>): string {
  return text.replace(/\{(\w+)\}/g, (_, name: string) => String(values[name] ?? ''));
}

/** A department's (or clinic's) name in the chosen language: Japanese and English as configured, both for the others. */
export function nameIn(name: LocalizedText, language: CheckinLanguage): string {
  if (language === 'ja') return name.ja;
  if (language === 'en') return name.en;
  return `${name.ja} / ${name.en}`;
}
